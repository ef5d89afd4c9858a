package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// simJSON is the part of `lectern simulate --json` the tests read.
type simJSON struct {
	Inputs    map[string]string `json:"inputs"`
	Scenarios []struct {
		Scenario struct {
			Name     string `json:"name"`
			Collapse bool   `json:"collapse"`
			Peers    bool   `json:"peers"`
			Prefetch int    `json:"prefetch"`
			Kills    []struct {
				Edge, Region string
			} `json:"kills"`
		} `json:"scenario"`
		Summary struct {
			Students        int     `json:"students"`
			StudentRequests int64   `json:"student_requests"`
			OriginRequests  int64   `json:"origin_requests"`
			OriginPeak      int64   `json:"origin_peak_rps"`
			RequestOffload  float64 `json:"request_offload"`
			Unserved        int64   `json:"unserved"`
			Failovers       int64   `json:"failovers"`
			KeysChecked     int     `json:"keys_checked"`
			KeyMismatches   int     `json:"key_mismatches"`
		} `json:"summary"`
		OriginRequests  []int64 `json:"origin_requests"`
		StudentRequests []int64 `json:"student_requests"`
	} `json:"scenarios"`
}

func readSimJSON(t *testing.T, path string) simJSON {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out simJSON
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return out
}

// TestSimulateCommand: the default matrix on a small world, its JSON consistent with itself, then
// one scenario given by flags (one from the environment).
func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	small := []string{"simulate", "--students", "4000", "--lectures", "30", "--edges", "24", "--sample", "100"}
	stdout, stderr, code := runLectern(t, dir, append(small, "--window", "40s", "--json", "all.json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"4 000 students, 30 lectures", "all on, region lost at 09:00:20", "origin requests per second", "0 not the object's shared key"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	all := readSimJSON(t, filepath.Join(dir, "all.json"))
	names := []string{"all on", "collapsing off", "peer group off", "prefetch off", "all off", "all on, edge lost at 09:00:20", "all on, region lost at 09:00:20"}
	if len(all.Scenarios) != len(names) || all.Inputs["students"] != "4000" {
		t.Fatalf("%d scenarios, inputs %v", len(all.Scenarios), all.Inputs)
	}
	for i, sc := range all.Scenarios {
		s := sc.Summary
		if sc.Scenario.Name != names[i] || len(sc.OriginRequests) != 40 || s.Students != 4000 || s.Unserved != 0 || s.KeyMismatches != 0 || s.KeysChecked == 0 {
			t.Errorf("scenario %d: %+v (%d seconds)", i, sc.Scenario, len(sc.OriginRequests))
		}
		var origin, students int64
		for sec := range sc.OriginRequests {
			origin += sc.OriginRequests[sec]
			students += sc.StudentRequests[sec]
		}
		if origin != s.OriginRequests || students != s.StudentRequests || origin == 0 || origin >= students ||
			s.RequestOffload != 1-float64(origin)/float64(students) {
			t.Errorf("%s: series sum to %d origin and %d student requests, summary %+v", sc.Scenario.Name, origin, students, s)
		}
	}
	// Collapsing and the peer group spare the origin (prefetch fetches ahead, some of it past the
	// window's last requests, so it is left out of the comparison).
	if on, off := all.Scenarios[3].Summary, all.Scenarios[4].Summary; on.OriginRequests >= off.OriginRequests {
		t.Errorf("collapsing and peers: %d origin requests, neither %d", on.OriginRequests, off.OriginRequests)
	}
	if all.Scenarios[5].Summary.Failovers == 0 || all.Scenarios[6].Summary.Failovers <= all.Scenarios[5].Summary.Failovers ||
		len(all.Scenarios[6].Scenario.Kills) != 1 || all.Scenarios[6].Scenario.Kills[0].Region == "" {
		t.Errorf("losses: %+v", all.Scenarios[5:])
	}

	// One scenario by flags; the edge to lose by REGION/N; the window from the environment.
	cmd := exec.Command(lecternBin, append(small, "--collapse=false", "--peers=false", "--prefetch", "0", "--kill-edge", "seoul/2@09:00:05", "--json", "one.json")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LECTERN_WINDOW=20s", "LECTERN_RAMP=10s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	one := readSimJSON(t, filepath.Join(dir, "one.json"))
	if len(one.Scenarios) != 1 {
		t.Fatalf("%d scenarios, want 1", len(one.Scenarios))
	}
	sc := one.Scenarios[0]
	if sc.Scenario.Collapse || sc.Scenario.Peers || sc.Scenario.Prefetch != 0 || len(sc.OriginRequests) != 20 ||
		len(sc.Scenario.Kills) != 1 || sc.Scenario.Kills[0].Edge != "http://10.0.0.2:8082" || sc.Summary.Failovers == 0 {
		t.Errorf("one scenario: %+v, %d seconds, summary %+v", sc.Scenario, len(sc.OriginRequests), sc.Summary)
	}

	if _, stderr, code := runLectern(t, dir, "simulate", "--kill-edge", "nowhere@20s", "--students", "100"); code == 0 || !strings.Contains(stderr, `no edge "nowhere"`) {
		t.Errorf("an unknown edge: exit %d\n%s", code, stderr)
	}
}
