package cdn

import (
	"crypto/sha256"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// RegionMap says which edges serve which students: the regions, each with its edges and the client
// networks it serves, and where a region's students go when it cannot serve them. The router reads it
// to send students to an edge, and each edge reads its own region's edges from it as its peer group.
// See "Region map" in the package documentation for the file format.
type RegionMap struct {
	// Default is the region of clients whose address is in no region's Prefixes.
	Default string
	// Regions in the order of the file.
	Regions []Region

	schools map[string]string // school -> region name
	sum     [sha256.Size]byte // of the file's bytes, so that a watcher sees which edits are new
}

// Region is one region of a RegionMap.
type Region struct {
	Name string
	// Edges are the region's edges; every one is in the region's peer group.
	Edges []RegionEdge
	// Prefixes are the client networks the region serves, without host bits.
	Prefixes []netip.Prefix
	// Neighbours are the regions that serve this one's clients when it cannot, nearest first.
	Neighbours []string
	// Schools are the schools whose students the region serves, as teachers' schools are spelled
	// in the catalog (`lectern teacher add NAME --school SCHOOL`). Ingest puts the region of a
	// lecture's school in its playback tokens, and the router reads it from there first.
	Schools []string
}

// RegionEdge is one edge of a Region.
type RegionEdge struct {
	// URL is the edge's base URL, as students and its peers reach it (http or https, no query).
	URL string
	// Weight is the edge's share of the region's capacity, relative to the others. Default: 1.
	Weight float64
	// Drain takes the edge out of service without removing it: the router sends it no new clients,
	// and it owns no keys in its peer group (see "Peer group" in the package documentation).
	Drain bool
}

// maxRegionMapBytes bounds what is read: thousands of edges fit in far less.
const maxRegionMapBytes = 4 << 20

// regionName is a DNS label, so that a region can name a Kubernetes object or a metric label as is.
var regionName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

//go:embed regions.default.json
var defaultRegionMap []byte

// DefaultRegionMapJSON returns the region map Lectern ships: the twelve regions, their neighbours,
// the default region seoul, and one edge, a placeholder for a single machine (see the file's comment).
func DefaultRegionMapJSON() []byte { return slices.Clone(defaultRegionMap) }

// LoadRegionMap reads and checks the region map file at path. Its errors name the file, and the
// line or the field at fault with what to write instead; all the faults found are reported at once.
func LoadRegionMap(path string) (*RegionMap, error) {
	data, err := readRegionFile(path)
	if err != nil {
		return nil, err
	}
	m, err := ParseRegionMap(data)
	if err != nil {
		return nil, fmt.Errorf("region map %s:\n%w", path, err)
	}
	return m, nil
}

func readRegionFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("region map: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRegionMapBytes+1))
	if err != nil {
		return nil, fmt.Errorf("region map: %w", err)
	}
	if len(data) > maxRegionMapBytes {
		return nil, fmt.Errorf("region map %s: larger than %d MiB; is it the right file?", path, maxRegionMapBytes>>20)
	}
	return data, nil
}

// Region returns the region called name, or nil.
func (m *RegionMap) Region(name string) *Region {
	for i := range m.Regions {
		if m.Regions[i].Name == name {
			return &m.Regions[i]
		}
	}
	return nil
}

// SchoolRegion returns the name of the region that serves school's students, or "" when no region
// lists it.
func (m *RegionMap) SchoolRegion(school string) string {
	return m.schools[school]
}

// Names returns the regions' names in the file's order.
func (m *RegionMap) Names() []string {
	out := make([]string, len(m.Regions))
	for i, r := range m.Regions {
		out[i] = r.Name
	}
	return out
}

// PeerGroup returns the region's edges as the peer group of its edge self wants them, for
// Config.Peers and Config.DrainingPeers: every edge's URL as the file spells it, and those that
// drain. self must be one of them, spelled the same.
func (r *Region) PeerGroup(self string) (peers, draining []string, err error) {
	for _, e := range r.Edges {
		peers = append(peers, e.URL)
		if e.Drain {
			draining = append(draining, e.URL)
		}
	}
	if slices.Contains(peers, self) {
		return peers, draining, nil
	}
	hint := ""
	for _, p := range peers {
		if canonicalBaseURL(p) == canonicalBaseURL(self) {
			hint = fmt.Sprintf(" (the file spells it %q: give it the same way)", p)
		}
	}
	if len(peers) == 0 {
		return nil, nil, fmt.Errorf("%q is not an edge of region %s%s, which has none", self, r.Name, hint)
	}
	return nil, nil, fmt.Errorf("%q is not an edge of region %s%s; its edges are %s", self, r.Name, hint, shortList(peers))
}

// shortList quotes the first few of names, for an error message.
func shortList(names []string) string {
	const most = 5
	q := make([]string, 0, most)
	for _, n := range names[:min(len(names), most)] {
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := strings.Join(q, ", ")
	if len(names) > most {
		s += fmt.Sprintf(" and %d more", len(names)-most)
	}
	return s
}

// ParseRegionMap reads a region map from the bytes of its JSON file and checks it: a field that is
// unknown, given twice, of the wrong type or missing; a region name that is not a DNS label; an edge
// URL that is not an http or https base URL, or that is listed twice (in one region or two); a weight
// that is not above zero; a prefix that is not CIDR, has host bits set or belongs to two regions; a
// neighbour that is no region, the region itself or named twice; a default that is no region.
func ParseRegionMap(data []byte) (*RegionMap, error) {
	tree, err := readStrictJSON(data)
	if err != nil {
		return nil, err
	}
	p := &regionParser{edgeAt: map[string]string{}, prefixAt: map[netip.Prefix]string{}, schoolAt: map[string]string{}}
	m := &RegionMap{sum: sha256.Sum256(data), schools: map[string]string{}}
	top := p.object("", tree, `{"default": "seoul", "regions": {"seoul": {...}, ...}}`, "default", "regions")
	if top == nil {
		return nil, p.err()
	}
	if v, ok := top.vals["regions"]; !ok {
		p.add("", `"regions" is missing: give the regions by name, e.g. "regions": {"seoul": {"edges": [{"url": "http://10.1.0.2:8082"}]}}`)
	} else if obj, ok := v.(*jsonObject); !ok {
		p.add("regions", `want an object of regions by name like {"seoul": {...}, "busan-ulsan": {...}}, got %s`, describe(v))
	} else {
		if len(obj.keys) == 0 {
			p.add("regions", "no regions: give at least one")
		}
		for _, name := range obj.keys {
			r := p.region(joinKey("regions", name), name, obj.vals[name])
			for _, school := range r.Schools {
				m.schools[school] = r.Name
			}
			m.Regions = append(m.Regions, r)
		}
	}
	names := m.Names()
	for _, n := range p.neighbours {
		switch {
		case n.name == n.of:
			p.add(n.path, "%q is this region itself; a neighbour is another region", n.name)
		case !slices.Contains(names, n.name):
			p.add(n.path, "%q is not a region of this file (its regions are %s)", n.name, shortList(names))
		}
	}
	if v, ok := top.vals["default"]; !ok {
		p.add("", `"default" is missing: name the region of clients in no region's prefixes, e.g. "default": "seoul"`)
	} else if s, ok := p.str("default", v); ok {
		if len(names) > 0 && !slices.Contains(names, s) {
			p.add("default", "%q is not a region of this file (its regions are %s)", s, shortList(names))
		}
		m.Default = s
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return m, nil
}

type regionParser struct {
	problems
	edgeAt     map[string]string       // canonical edge URL: where it is first listed
	prefixAt   map[netip.Prefix]string // prefix: where it is first listed
	schoolAt   map[string]string       // school: where it is first listed
	neighbours []neighbourRef          // checked once every region's name is known
}

type neighbourRef struct{ path, of, name string }

func (p *regionParser) region(path, name string, v any) Region {
	r := Region{Name: name}
	if !regionName.MatchString(name) {
		p.add(path, "a region name is lowercase letters, digits and inner hyphens, at most 63, like \"busan-ulsan\"")
	}
	obj := p.object(path, v, `{"edges": [{"url": "http://10.1.0.2:8082"}], "prefixes": ["10.1.0.0/16"], "neighbours": ["busan-ulsan"]}`,
		"edges", "prefixes", "neighbours", "schools")
	if obj == nil {
		return r
	}
	p.eachItem(obj, path, "schools", func(ipath string, v any) {
		if school, ok := p.school(ipath, v); ok {
			r.Schools = append(r.Schools, school)
		}
	})
	p.eachItem(obj, path, "edges", func(ipath string, v any) {
		if e, ok := p.edge(ipath, v); ok {
			r.Edges = append(r.Edges, e)
		}
	})
	p.eachItem(obj, path, "prefixes", func(ipath string, v any) {
		if pfx, ok := p.prefix(ipath, v); ok {
			r.Prefixes = append(r.Prefixes, pfx)
		}
	})
	p.eachItem(obj, path, "neighbours", func(ipath string, v any) {
		n, ok := p.str(ipath, v)
		if !ok {
			return
		}
		if slices.Contains(r.Neighbours, n) {
			p.add(ipath, "%q is named twice", n)
			return
		}
		r.Neighbours = append(r.Neighbours, n)
		p.neighbours = append(p.neighbours, neighbourRef{path: ipath, of: name, name: n})
	})
	return r
}

// eachItem calls each with the path (like regions.seoul.edges[2]) and the value of every element of
// the list obj holds at key; a key that is absent is an empty list, and a value that is no list is
// reported by p.list.
func (p *regionParser) eachItem(obj *jsonObject, path, key string, each func(ipath string, v any)) {
	v, ok := obj.vals[key]
	if !ok {
		return
	}
	for i, x := range p.list(path+"."+key, v) {
		each(fmt.Sprintf("%s.%s[%d]", path, key, i), x)
	}
}

func (p *regionParser) edge(path string, v any) (RegionEdge, bool) {
	e := RegionEdge{Weight: 1}
	obj := p.object(path, v, `{"url": "http://10.1.0.2:8082", "weight": 1}`, "url", "weight", "drain")
	if obj == nil {
		return e, false
	}
	ok := true
	if uv, found := obj.vals["url"]; !found {
		p.add(path, `"url" is missing: give the edge's base URL, e.g. "url": "http://10.1.0.2:8082"`)
		ok = false
	} else if s, isStr := p.str(path+".url", uv); !isStr {
		ok = false
	} else if err := checkBaseURL(s); err != nil {
		p.add(path+".url", "%v", err)
		ok = false
	} else if prev, dup := p.edgeAt[canonicalBaseURL(s)]; dup {
		p.add(path+".url", "%q is already listed at %s: an edge is listed once, in one region", s, prev)
		ok = false
	} else {
		p.edgeAt[canonicalBaseURL(s)] = path
		e.URL = s
	}
	if wv, found := obj.vals["weight"]; found {
		if w, isNum := p.number(path+".weight", wv); !isNum {
			ok = false
		} else if w <= 0 {
			p.add(path+".weight", `%v: a weight is the edge's share of the region's capacity and must be above 0; to take an edge out of service, set "drain": true`, w)
			ok = false
		} else {
			e.Weight = w
		}
	}
	if dv, found := obj.vals["drain"]; found {
		if b, isBool := p.boolean(path+".drain", dv); isBool {
			e.Drain = b
		} else {
			ok = false
		}
	}
	return e, ok
}

// school checks one of a region's schools: spelled as the catalog keeps it (trimmed, at most 200
// bytes, no control characters) and listed once in the whole file.
func (p *regionParser) school(path string, v any) (string, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return "", false
	}
	switch {
	case strings.TrimSpace(s) == "":
		p.add(path, "an empty school: give the school's name or code as teachers are registered with it")
		return "", false
	case strings.TrimSpace(s) != s:
		p.add(path, "%q has spaces around it; the catalog keeps schools trimmed: write %q", s, strings.TrimSpace(s))
		return "", false
	case len(s) > 200:
		p.add(path, "a school longer than 200 bytes; the catalog keeps no longer ones")
		return "", false
	case strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }):
		p.add(path, "%q contains control characters", s)
		return "", false
	}
	if prev, dup := p.schoolAt[s]; dup {
		p.add(path, "%q is already listed at %s: a school belongs to one region", s, prev)
		return "", false
	}
	p.schoolAt[s] = path
	return s, true
}

func (p *regionParser) prefix(path string, v any) (netip.Prefix, bool) {
	s, ok := p.str(path, v)
	if !ok {
		return netip.Prefix{}, false
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		p.add(path, "%q is not a CIDR prefix like \"10.1.0.0/16\" or \"2001:db8:1::/48\"", s)
		return netip.Prefix{}, false
	}
	if m := pfx.Masked(); m != pfx {
		p.add(path, "%q has bits set past the /%d: write %q", s, pfx.Bits(), m.String())
		return netip.Prefix{}, false
	}
	if prev, dup := p.prefixAt[pfx]; dup {
		p.add(path, "%q is already listed at %s: a network belongs to one region", s, prev)
		return netip.Prefix{}, false
	}
	p.prefixAt[pfx] = path
	return pfx, true
}

// checkBaseURL says what keeps s from being an edge's base URL: absolute http or https with a host,
// and no query, fragment or credentials.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("%q: give an absolute http:// or https:// URL, e.g. \"http://10.1.0.2:8082\"", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q has a query; a base URL has none", s)
	case u.Fragment != "":
		return fmt.Errorf("%q has a #fragment; a base URL has none", s)
	case u.User != nil:
		return fmt.Errorf("%q carries credentials; edges authenticate to each other with the peer secret", s)
	}
	return nil
}

// canonicalBaseURL spells a valid base URL one way, so that two spellings of one edge are seen as one:
// lower-case scheme and host, no default port, no trailing slash.
func canonicalBaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}
