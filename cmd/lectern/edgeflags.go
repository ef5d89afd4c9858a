package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/ingest"
	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/purge"
	"github.com/lectern/lectern/origin"
)

// playbackFlags are the signed-playback settings: edges verify with the keys, ingest mints with them.
type playbackFlags struct {
	keys string
	ttl  time.Duration
}

// register adds --playback-keys, and --playback-ttl when this role mints playback URLs.
func (f *playbackFlags) register(fs *flag.FlagSet, mints bool) {
	fs.StringVar(&f.keys, "playback-keys", "", "sign playback URLs: KEYID:SECRET[,KEYID:SECRET...], secrets base64 or hex of >= 16 bytes; the first signs, all verify (give every edge, origin and ingest the same; prefer the environment variable). Empty: unsigned /hls/ URLs")
	if mints {
		fs.DurationVar(&f.ttl, "playback-ttl", 6*time.Hour, "how long a signed playback URL works")
	}
}

func (f *playbackFlags) parse() (playtoken.Keys, error) {
	keys, err := playtoken.ParseKeys(f.keys)
	if err != nil {
		return nil, fmt.Errorf("--playback-keys: %v", err)
	}
	if f.ttl < 0 {
		return nil, fmt.Errorf("--playback-ttl %v: must be positive", f.ttl)
	}
	return keys, nil
}

// purgeFlags say how ingest reaches the purge endpoint of edges and origins, and edges and origins
// what secret it must send.
type purgeFlags struct {
	edges, origins, secret string
}

// register adds --purge-secret, and --purge-edges and --purge-origins for a role that tells remote
// caches to purge.
func (f *purgeFlags) register(fs *flag.FlagSet, tellsCaches bool) {
	if tellsCaches {
		fs.StringVar(&f.edges, "purge-edges", "", "edges to purge when a lecture is deleted or replaced: URL[,URL...], e.g. http://edge-1:8082")
		fs.StringVar(&f.origins, "purge-origins", "", "origins to purge (their hot cache) before the edges, so that no edge refills from a stale origin: URL[,URL...], e.g. http://origin:8081")
		fs.StringVar(&f.secret, "purge-secret", "", "bearer secret the edges' and origins' --purge-secret expects (prefer the environment variable)")
		return
	}
	fs.StringVar(&f.secret, "purge-secret", "", "accept POST "+purge.Path+" with this bearer secret, from ingest's --purge-edges or --purge-origins (prefer the environment variable). Empty: no purge endpoint")
}

// purger returns the purger for --purge-origins and --purge-edges, or nil when none are given. The
// origins are told first and the edges after them: an edge purged first could refill from an origin
// that still holds the object.
func (f *purgeFlags) purger() (ingest.Purger, error) {
	origins, err := purgeURLs("--purge-origins", f.origins, "an origin URL like http://origin:8081")
	if err != nil {
		return nil, err
	}
	edges, err := purgeURLs("--purge-edges", f.edges, "an edge URL like http://edge-1:8082")
	if err != nil {
		return nil, err
	}
	if len(edges)+len(origins) == 0 {
		return nil, nil
	}
	if f.secret == "" {
		return nil, errors.New("--purge-edges and --purge-origins need --purge-secret (or LECTERN_PURGE_SECRET), the secret the edges and origins were given")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var chain purge.Multi
	if len(origins) > 0 {
		chain = append(chain, purge.HTTPPurger{URLs: origins, Secret: f.secret, Role: "origin", Client: client})
	}
	if len(edges) > 0 {
		chain = append(chain, cdn.HTTPPurger{Edges: edges, Secret: f.secret, Client: client})
	}
	return chain, nil
}

func purgeURLs(flagName, list, example string) ([]string, error) {
	var out []string
	for e := range strings.SplitSeq(list, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not %s", flagName, e, example)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseEdgeSecrets reads --edge-secrets: the credentials the origin accepts from edges, comma-separated
// so that a rotation can list the old and the new one at once.
func parseEdgeSecrets(list string) ([]string, error) {
	var out []string
	for sec := range strings.SplitSeq(list, ",") {
		if sec = strings.TrimSpace(sec); sec == "" {
			continue
		}
		if err := checkSecret(sec); err != nil {
			return nil, fmt.Errorf("--edge-secrets: secret %d %v", len(out)+1, err)
		}
		if len(sec) < origin.MinEdgeSecretBytes {
			return nil, fmt.Errorf("--edge-secrets: secret %d is %d bytes, want at least %d (e.g. openssl rand -base64 32)",
				len(out)+1, len(sec), origin.MinEdgeSecretBytes)
		}
		out = append(out, sec)
	}
	return out, nil
}

// checkSecret refuses what cannot travel in an Authorization header as typed.
func checkSecret(sec string) error {
	for _, c := range []byte(sec) {
		if c <= ' ' || c >= 0x7f {
			return errors.New("must be printable ASCII without spaces (e.g. openssl rand -base64 32)")
		}
	}
	return nil
}

// peerFlags say who the edges of this edge's region are: a static --peers list, or the region map
// file (--regions, --region), which the edge follows as it is edited.
type peerFlags struct {
	peers, self, secret, regions, region string
	timeout, dialTimeout                 time.Duration
}

func (f *peerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.peers, "peers", "", "comma-separated base URLs of every edge of this region, this one included: a miss asks the key's owner among them before the upstream (or give --regions)")
	fs.StringVar(&f.regions, "regions", "", "region map file (JSON; the router's, see the cdn package documentation): this edge's peers are the edges of --region, and edits to the file (edges added, drained, removed) take effect within a second, without a restart. Instead of --peers")
	fs.StringVar(&f.region, "region", "", "this edge's region in --regions, e.g. seoul")
	fs.StringVar(&f.self, "self", "", "this edge's URL exactly as it appears in --peers, or among its region's edges in --regions")
	fs.StringVar(&f.secret, "peer-secret", "", "bearer secret the edges of the region present to each other; required with --playback-keys (prefer the environment variable)")
	fs.DurationVar(&f.timeout, "peer-timeout", 2*time.Second, "how long a miss waits for a peer's response headers before it tries the next peer or the upstream")
	fs.DurationVar(&f.dialTimeout, "peer-dial-timeout", 250*time.Millisecond, "how long a miss waits for a connection to a peer (a dead or unreachable one) before it moves on")
}

// peerSettings are what the flags give cdn.Config, and with --regions the map they come from.
type peerSettings struct {
	peers, draining []string
	regionMap       *cdn.RegionMap
}

// parse checks the flags, with their names in the errors, so that cdn.NewEdge cannot fail on them.
// keyed says the edge has --playback-keys.
func (f *peerFlags) parse(keyed bool) (peerSettings, error) {
	var s peerSettings
	if err := checkSecret(f.secret); err != nil {
		return s, fmt.Errorf("--peer-secret %v", err)
	}
	if f.timeout < 0 || f.dialTimeout < 0 {
		return s, fmt.Errorf("--peer-timeout %v, --peer-dial-timeout %v: give positive durations (0: the default)", f.timeout, f.dialTimeout)
	}
	switch {
	case f.regions != "" && f.peers != "":
		return s, errors.New("--peers and --regions both name this edge's peers: give one")
	case f.regions != "":
		m, err := cdn.LoadRegionMap(f.regions)
		if err != nil {
			return s, fmt.Errorf("--regions: %w", err)
		}
		if f.region == "" {
			return s, fmt.Errorf("--regions needs --region, this edge's region in %s: one of %s", f.regions, strings.Join(m.Names(), ", "))
		}
		r := m.Region(f.region)
		if r == nil {
			return s, fmt.Errorf("--region %q: %s has no such region; its regions are %s", f.region, f.regions, strings.Join(m.Names(), ", "))
		}
		if f.self == "" {
			return s, fmt.Errorf("--self is required with --regions: this edge's URL as region %s lists it", f.region)
		}
		if s.peers, s.draining, err = r.PeerGroup(f.self); err != nil {
			return s, fmt.Errorf("--self: %v (in %s)", err, f.regions)
		}
		s.regionMap = m
	case f.region != "":
		return s, errors.New("--region is for --regions: give the region map file too")
	default:
		for p := range strings.SplitSeq(f.peers, ",") {
			if p = strings.TrimSpace(p); p != "" {
				s.peers = append(s.peers, p)
			}
		}
		for i, p := range s.peers {
			if pu, err := url.Parse(p); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.RawQuery != "" {
				return s, fmt.Errorf("--peers: %q is not an edge's base URL, e.g. http://10.0.0.2:8082", p)
			}
			if slices.Contains(s.peers[:i], p) {
				return s, fmt.Errorf("--peers lists %q twice", p)
			}
		}
		switch {
		case len(s.peers) > 0 && !slices.Contains(s.peers, f.self):
			return s, fmt.Errorf("--self %q: give this edge's URL exactly as it appears in --peers", f.self)
		case len(s.peers) == 0 && f.self != "":
			return s, errors.New("--self is for a peer group: give --peers (or --regions) too")
		}
	}
	if len(s.peers) > 0 && keyed && f.secret == "" {
		return s, errors.New("--peer-secret is required with --peers or --regions and --playback-keys: peers ask each other for plain /hls/ paths")
	}
	return s, nil
}
