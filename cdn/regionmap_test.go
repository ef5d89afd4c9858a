package cdn

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const goodRegionMap = `{
  "comment": "two regions",
  "default": "seoul",
  "regions": {
    "seoul": {
      "edges": [
        {"url": "http://10.1.0.2:8082"},
        {"url": "http://10.1.0.3:8082", "weight": 2.5, "comment": "the big one"},
        {"url": "https://edge-3.seoul.example", "drain": true}
      ],
      "prefixes": ["10.1.0.0/16", "2001:db8:1::/48"],
      "neighbours": ["busan-ulsan"],
      "schools": ["Seoul Gyeonggi High School", "7010057"]
    },
    "busan-ulsan": {"edges": [{"url": "http://10.2.0.2:8082/cdn", "drain": false}], "schools": ["Busan Haeundae Middle School"]}
  }
}`

func TestParseRegionMap(t *testing.T) {
	m, err := ParseRegionMap([]byte(goodRegionMap))
	if err != nil {
		t.Fatal(err)
	}
	want := []Region{
		{Name: "seoul",
			Edges: []RegionEdge{{URL: "http://10.1.0.2:8082", Weight: 1}, {URL: "http://10.1.0.3:8082", Weight: 2.5},
				{URL: "https://edge-3.seoul.example", Weight: 1, Drain: true}},
			Prefixes:   []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8:1::/48")},
			Neighbours: []string{"busan-ulsan"}, Schools: []string{"Seoul Gyeonggi High School", "7010057"}},
		{Name: "busan-ulsan", Edges: []RegionEdge{{URL: "http://10.2.0.2:8082/cdn", Weight: 1}}, Schools: []string{"Busan Haeundae Middle School"}},
	}
	if m.Default != "seoul" || !reflect.DeepEqual(m.Regions, want) {
		t.Errorf("got default %q, regions\n%+v\nwant\n%+v", m.Default, m.Regions, want)
	}
	if r := m.Region("busan-ulsan"); r == nil || r.Name != "busan-ulsan" {
		t.Errorf("Region(busan-ulsan) = %v", r)
	}
	for school, want := range map[string]string{"7010057": "seoul", "Busan Haeundae Middle School": "busan-ulsan",
		"busan haeundae middle school": "", "": "", "Daegu Science High School": ""} {
		if got := m.SchoolRegion(school); got != want {
			t.Errorf("SchoolRegion(%q) = %q, want %q", school, got, want)
		}
	}
	if r := m.Region("daegu-gangwon"); r != nil {
		t.Errorf("Region of a region not in the file = %v, want nil", r)
	}
	peers, draining, err := m.Region("seoul").PeerGroup("http://10.1.0.3:8082")
	if err != nil || !reflect.DeepEqual(peers, []string{"http://10.1.0.2:8082", "http://10.1.0.3:8082", "https://edge-3.seoul.example"}) ||
		!reflect.DeepEqual(draining, []string{"https://edge-3.seoul.example"}) {
		t.Errorf("PeerGroup = %q, %q, %v", peers, draining, err)
	}
	for self, want := range map[string]string{
		"http://10.1.0.2:8082/":  `"http://10.1.0.2:8082/" is not an edge of region seoul (the file spells it "http://10.1.0.2:8082": give it the same way)`,
		"http://10.2.0.2:8082":   `is not an edge of region seoul; its edges are "http://10.1.0.2:8082", "http://10.1.0.3:8082", "https://edge-3.seoul.example"`,
		"http://10.9.9.9:8082":   "is not an edge of region seoul",
		"":                       `"" is not an edge of region seoul`,
		"http://10.1.0.2:8082 ":  "is not an edge",
		"HTTP://10.1.0.2:8082":   `the file spells it "http://10.1.0.2:8082"`,
		"http://10.1.0.2:8082#x": "is not an edge",
	} {
		if _, _, err := m.Region("seoul").PeerGroup(self); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PeerGroup(%q) error %v, want %q", self, err, want)
		}
	}
}

// Every mistake an editor can make is refused with the path of the value at fault and what to write.
func TestParseRegionMapErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"empty", "", []string{"the file is empty"}},
		{"blank", " \n\t", []string{"the file is empty"}},
		{"not an object", `["seoul"]`, []string{"the top level: want an object like {\"default\""}},
		{"syntax", "{\n  \"default\": \"seoul\",\n  \"regions\": {,}\n}", []string{"line 3, column 15: invalid character ','"}},
		{"trailing comma", `{"default": "seoul", "regions": {"seoul": {}},}`, []string{"line 1, column 47: invalid character '}'"}},
		{"bad literal", "{\"default\": \"seoul\",\n \"regions\": {\"seoul\": {\"edges\": [{\"url\": \"http://a:1\", \"drain\": tru}]}}}",
			[]string{"line 2, column 68: invalid character '}' in literal true"}},
		{"newline in string", "{\"default\": \"seo\nul\", \"regions\": {}}", []string{`line 1, column 17: invalid character '\n' in string literal`}},
		{"unclosed", `{"default": "seoul", "regions": {"seoul": {}}`, []string{"ends in the middle of a value: is a closing } or ] missing?"}},
		{"two objects", `{"default": "seoul", "regions": {"seoul": {}}} {}`, []string{"line 1, column 48: more text after the end"}},
		{"no regions", `{"default": "seoul"}`, []string{`the top level: "regions" is missing`}},
		{"empty regions", `{"default": "seoul", "regions": {}}`, []string{"regions: no regions: give at least one"}},
		{"regions a list", `{"default": "seoul", "regions": [{"name": "seoul"}]}`, []string{"regions: want an object of regions by name", "got a list"}},
		{"no default", `{"regions": {"seoul": {}}}`, []string{`the top level: "default" is missing`}},
		{"default not a string", `{"default": 1, "regions": {"seoul": {}}}`, []string{"default: want a string, got the number 1"}},
		{"unknown default", `{"default": "sooul", "regions": {"seoul": {}, "busan-ulsan": {}}}`,
			[]string{`default: "sooul" is not a region of this file (its regions are "seoul", "busan-ulsan")`}},
		{"unknown top field", `{"default": "seoul", "regions": {"seoul": {}}, "defualt": "x"}`,
			[]string{`the top level: unknown field "defualt" (the fields are default, regions and comment)`}},
		{"comment not a string", `{"comment": ["a"], "default": "seoul", "regions": {"seoul": {}}}`, []string{"comment: want a string (a note for readers), got a list"}},
		{"duplicate region", `{"default": "seoul", "regions": {"seoul": {}, "seoul": {"edges": []}}}`,
			[]string{`regions: "seoul" is given twice in this object (line 1, column 54)`}},
		{"duplicate field", `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "http://a:1", "url": "http://b:1"}]}}}`,
			[]string{`regions.seoul.edges[0]: "url" is given twice`}},
		{"bad region name", `{"default": "Seoul City", "regions": {"Seoul City": {}, "-x": {}}}`,
			[]string{`regions["Seoul City"]: a region name is lowercase letters, digits and inner hyphens`, `regions.-x: a region name`}},
		{"region not an object", `{"default": "seoul", "regions": {"seoul": ["http://a:1"]}}`, []string{`regions.seoul: want an object like {"edges"`, "got a list"}},
		{"unknown region field", `{"default": "seoul", "regions": {"seoul": {"neighbors": ["x"]}}}`,
			[]string{`regions.seoul: unknown field "neighbors" (the fields are edges, prefixes, neighbours, schools and comment)`}},
		{"edges not a list", `{"default": "seoul", "regions": {"seoul": {"edges": {"url": "http://a:1"}}}}`, []string{"regions.seoul.edges: want a list [...], got an object"}},
		{"edge a string", `{"default": "seoul", "regions": {"seoul": {"edges": ["http://a:1"]}}}`,
			[]string{`regions.seoul.edges[0]: want an object like {"url": "http://10.1.0.2:8082", "weight": 1}, got the string "http://a:1"`}},
		{"edge without url", `{"default": "seoul", "regions": {"seoul": {"edges": [{"weight": 1}]}}}`, []string{`regions.seoul.edges[0]: "url" is missing`}},
		{"unknown edge field", `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "http://a:1", "wieght": 2}]}}}`,
			[]string{`regions.seoul.edges[0]: unknown field "wieght" (the fields are url, weight, drain and comment)`}},
		{"bad urls", `{"default": "seoul", "regions": {"seoul": {"edges": [
				{"url": "10.1.0.2:8082"}, {"url": "ftp://a:1"}, {"url": "http://"}, {"url": "http://a:1/?x=1"},
				{"url": "http://a:1/#top"}, {"url": "http://u:p@a:1"}, {"url": "/edge"}, {"url": 8082}, {"url": "http://a:1?"}]}}}`,
			[]string{`regions.seoul.edges[0].url: "10.1.0.2:8082": give an absolute http:// or https:// URL`,
				`edges[1].url: "ftp://a:1": give an absolute http://`,
				`edges[2].url: "http://" has no host`,
				`edges[3].url: "http://a:1/?x=1" has a query`,
				`edges[4].url: "http://a:1/#top" has a #fragment`,
				`edges[5].url: "http://u:p@a:1" carries credentials`,
				`edges[6].url: "/edge": give an absolute`,
				`edges[7].url: want a string, got the number 8082`,
				`edges[8].url: "http://a:1?" has a query`}},
		{"duplicate edge in a region", `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "http://a:1"}, {"url": "http://A:1/"}]}}}`,
			[]string{`regions.seoul.edges[1].url: "http://A:1/" is already listed at regions.seoul.edges[0]: an edge is listed once, in one region`}},
		{"edge in two regions", `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "http://a"}]}, "busan-ulsan": {"edges": [{"url": "http://a:80"}]}}}`,
			[]string{`regions.busan-ulsan.edges[0].url: "http://a:80" is already listed at regions.seoul.edges[0]`}},
		{"bad weights", `{"default": "seoul", "regions": {"seoul": {"edges": [
				{"url": "http://a:1", "weight": 0}, {"url": "http://a:2", "weight": -1}, {"url": "http://a:3", "weight": "2"},
				{"url": "http://a:4", "weight": 1e999}, {"url": "http://a:5", "weight": null}]}}}`,
			[]string{`regions.seoul.edges[0].weight: 0: a weight is the edge's share of the region's capacity and must be above 0; to take an edge out of service, set "drain": true`,
				"edges[1].weight: -1: a weight", `edges[2].weight: want a number, got the string "2"`,
				"edges[3].weight: 1e999 is out of range", "edges[4].weight: want a number, got null"}},
		{"bad drain", `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "http://a:1", "drain": "yes"}]}}}`,
			[]string{`regions.seoul.edges[0].drain: want true or false, got the string "yes"`}},
		{"bad prefixes", `{"default": "seoul", "regions": {"seoul": {"prefixes": ["10.1.0.0/33", "10.1.2.3/16", "10.1.0.0", "2001:db8::1/32", 10]}}}`,
			[]string{`regions.seoul.prefixes[0]: "10.1.0.0/33" is not a CIDR prefix like "10.1.0.0/16"`,
				`prefixes[1]: "10.1.2.3/16" has bits set past the /16: write "10.1.0.0/16"`,
				`prefixes[2]: "10.1.0.0" is not a CIDR prefix`,
				`prefixes[3]: "2001:db8::1/32" has bits set past the /32: write "2001:db8::/32"`,
				"prefixes[4]: want a string, got the number 10"}},
		{"prefix in two regions", `{"default": "seoul", "regions": {"seoul": {"prefixes": ["10.1.0.0/16"]}, "busan-ulsan": {"prefixes": ["10.2.0.0/16", "10.1.0.0/16"]}}}`,
			[]string{`regions.busan-ulsan.prefixes[1]: "10.1.0.0/16" is already listed at regions.seoul.prefixes[0]: a network belongs to one region`}},
		{"bad neighbours", `{"default": "seoul", "regions": {"seoul": {"neighbours": ["busan", "seoul", "busan-ulsan", "busan-ulsan", 3]}, "busan-ulsan": {}}}`,
			[]string{`regions.seoul.neighbours[0]: "busan" is not a region of this file (its regions are "seoul", "busan-ulsan")`,
				`neighbours[1]: "seoul" is this region itself`, `neighbours[3]: "busan-ulsan" is named twice`,
				"neighbours[4]: want a string, got the number 3"}},
		{"bad schools", `{"default": "seoul", "regions": {"seoul": {"schools": ["", " Seoul High ", 7010057, "a\u0007b", "` + strings.Repeat("x", 201) + `"]}}}`,
			[]string{`regions.seoul.schools[0]: an empty school`,
				`schools[1]: " Seoul High " has spaces around it; the catalog keeps schools trimmed: write "Seoul High"`,
				"schools[2]: want a string, got the number 7010057", `schools[3]: "a\ab" contains control characters`,
				"schools[4]: a school longer than 200 bytes"}},
		{"schools not a list", `{"default": "seoul", "regions": {"seoul": {"schools": "Seoul High"}}}`, []string{"regions.seoul.schools: want a list"}},
		{"school in two regions", `{"default": "seoul", "regions": {"seoul": {"schools": ["Seoul High"]}, "busan-ulsan": {"schools": ["Busan High", "Seoul High"]}}}`,
			[]string{`regions.busan-ulsan.schools[1]: "Seoul High" is already listed at regions.seoul.schools[0]: a school belongs to one region`}},
		{"too deep", `{"default": "seoul", "regions": {"seoul": {"comment": ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}}`,
			[]string{"nested more than 32 levels deep"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseRegionMap([]byte(tc.file))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

// Many faults are reported at once, up to a point.
func TestParseRegionMapManyErrors(t *testing.T) {
	var edges []string
	for range 30 {
		edges = append(edges, `{"url": "x"}`)
	}
	_, err := ParseRegionMap([]byte(`{"default": "seoul", "regions": {"seoul": {"edges": [` + strings.Join(edges, ",") + `]}}}`))
	if err == nil || strings.Count(err.Error(), "\n") != 20 || !strings.HasSuffix(err.Error(), "and 10 more") {
		t.Errorf("got %v", err)
	}
}

// The shipped map holds the twelve regions, each with neighbours that exist, and the default region.
func TestDefaultRegionMap(t *testing.T) {
	m, err := ParseRegionMap(DefaultRegionMapJSON())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"seoul", "busan-ulsan", "daegu-gangwon", "incheon-chungbuk", "gwangju-daejeon",
		"gyeonggi-elementary-1", "gyeonggi-elementary-2", "gyeonggi-middle-overseas-general", "gyeongnam",
		"gyeongbuk-jeju", "sejong-chungnam", "jeonbuk-jeonnam"}
	if !reflect.DeepEqual(m.Names(), want) || m.Default != "seoul" {
		t.Errorf("regions %q, default %q", m.Names(), m.Default)
	}
	for _, r := range m.Regions {
		if len(r.Neighbours) == 0 {
			t.Errorf("%s has no neighbours to fall back on", r.Name)
		}
	}
	if peers, _, err := m.Region("seoul").PeerGroup("http://127.0.0.1:8082"); err != nil || len(peers) != 1 {
		t.Errorf("the placeholder edge: %q, %v", peers, err)
	}
	DefaultRegionMapJSON()[0] = 'x' // a copy: the next caller still gets the map
	if _, err := ParseRegionMap(DefaultRegionMapJSON()); err != nil {
		t.Error(err)
	}
}

func TestLoadRegionMap(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "regions.json")
	if err := os.WriteFile(good, []byte(goodRegionMap), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := LoadRegionMap(good); err != nil || len(m.Regions) != 2 {
		t.Fatalf("%v, %v", m, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "x"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegionMap(bad); err == nil || !strings.Contains(err.Error(), bad+":\nregions.seoul.edges[0].url") {
		t.Errorf("got %v, want the file and the field", err)
	}
	if _, err := LoadRegionMap(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json: no such file") {
		t.Errorf("got %v", err)
	}
	huge := filepath.Join(dir, "huge.json")
	if err := os.WriteFile(huge, make([]byte, maxRegionMapBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegionMap(huge); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("got %v", err)
	}
}
