package rendezvous

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://edge-%d.seoul.example:8082", i)
	}
	return out
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/hls/lec%04d/v1/720p/seg_%05d.m4s", i%97, i)
	}
	return out
}

// Keys spread evenly: with 16 edges and 100 000 segment keys every edge owns within 5% of its share.
func TestOwnersSpreadEvenly(t *testing.T) {
	ns, ks := nodes(16), keys(100000)
	count := map[string]int{}
	for _, k := range ks {
		count[Owner(ns, k)]++
	}
	want := float64(len(ks)) / float64(len(ns))
	for _, n := range ns {
		if dev := math.Abs(float64(count[n])-want) / want; dev > 0.05 {
			t.Errorf("%s owns %d keys, %.1f%% off the fair %0.f", n, count[n], dev*100, want)
		}
	}
}

// Removing a node moves only its own keys, each to the node ranked second; adding one moves only the
// keys it now wins. This is what lets a region lose or gain an edge without refetching everything.
func TestMembershipChangesMoveOnlyTheirKeys(t *testing.T) {
	ns, ks := nodes(8), keys(20000)
	gone := ns[3]
	without := slices.Delete(slices.Clone(ns), 3, 4)
	moved := 0
	for _, k := range ks {
		before, after := Owner(ns, k), Owner(without, k)
		if before != gone {
			if after != before {
				t.Fatalf("%s moved from %s to %s although %s was not its owner", k, before, after, gone)
			}
			continue
		}
		moved++
		if second := Rank(ns, k)[1]; after != second {
			t.Fatalf("%s went to %s, want the second-ranked %s", k, after, second)
		}
	}
	if share := float64(moved) / float64(len(ks)); share < 0.10 || share > 0.15 {
		t.Errorf("removing 1 of 8 nodes moved %.1f%% of keys, want about 12.5%%", share*100)
	}
	added := append(slices.Clone(ns), "http://edge-new.seoul.example:8082")
	for _, k := range ks {
		if o := Owner(added, k); o != Owner(ns, k) && o != added[len(added)-1] {
			t.Fatalf("%s moved to %s, which is not the new node", k, o)
		}
	}
}

// Every caller agrees whatever order it lists the nodes in, and Rank starts with Owner.
func TestOrderIndependentAndConsistent(t *testing.T) {
	ns := nodes(5)
	rev := slices.Clone(ns)
	slices.Reverse(rev)
	for _, k := range keys(2000) {
		r1, r2 := Rank(ns, k), Rank(rev, k)
		if !slices.Equal(r1, r2) {
			t.Fatalf("%s: rank depends on list order: %v vs %v", k, r1, r2)
		}
		if r1[0] != Owner(ns, k) || Owner(rev, k) != r1[0] {
			t.Fatalf("%s: Rank and Owner disagree", k)
		}
		if len(r1) != len(ns) {
			t.Fatalf("rank lost nodes: %v", r1)
		}
	}
	if Owner(nil, "/x") != "" || len(Rank(nil, "/x")) != 0 {
		t.Fatal("no nodes: want no owner")
	}
	if Score("ab", "c") == Score("a", "bc") {
		t.Fatal("node and key boundaries are not separated")
	}
}

func BenchmarkOwner16(b *testing.B) {
	ns := nodes(16)
	for b.Loop() {
		Owner(ns, "/hls/lec0001/v1/720p/seg_00042.m4s")
	}
}
