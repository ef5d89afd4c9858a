package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lectern/lectern/cdn"
)

func runRouter(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("router", "router [--regions FILE] [flags]", stderr)
	listenAddr := fs.String("listen", ":8083", "address players ask for their edge (GET /s/{token}/hls/... or /hls/...: a 302 to the edge)")
	regions := fs.String("regions", "", "region map file (JSON, see the cdn package documentation), followed as it is edited: edges added, drained or removed take effect within a second. Empty: the built-in map (cdn/regions.default.json), not followed")
	trust := fs.String("trust-forwarded-for", "", "proxies whose X-Forwarded-For is believed: CIDR[,CIDR...] (a bare address is one host). Empty: the client is the connection's peer")
	probeInterval := fs.Duration("probe-interval", 2*time.Second, "how often each edge's /readyz is asked")
	probeTimeout := fs.Duration("probe-timeout", time.Second, "longest wait for one probe")
	downAfter := fs.Int("down-after", 2, "failed probes in a row that take an edge out of service")
	loadFactor := fs.Float64("load-factor", 1.25, "an edge takes at most this multiple of its weighted share of its region's sessions before students spill to the lecture's next edge (>= 1)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var pbf playbackFlags
	pbf.register(fs, false)
	log, err := parseRole(fs, args, logLevel, stderr)
	if err != nil {
		return err
	}
	keys, err := pbf.parse()
	if err != nil {
		return err
	}
	trusted, err := parsePrefixes(*trust)
	if err != nil {
		return fmt.Errorf("--trust-forwarded-for: %v", err)
	}
	if *probeInterval <= 0 || *probeTimeout <= 0 || *downAfter <= 0 {
		return fmt.Errorf("--probe-interval %v, --probe-timeout %v, --down-after %d: all must be positive", *probeInterval, *probeTimeout, *downAfter)
	}
	if !(*loadFactor >= 1) {
		return fmt.Errorf("--load-factor %v: give 1 or more (1.25 lets an edge take a quarter more than its share)", *loadFactor)
	}
	var m *cdn.RegionMap
	if *regions == "" {
		m, err = cdn.ParseRegionMap(cdn.DefaultRegionMapJSON())
	} else {
		m, err = cdn.LoadRegionMap(*regions)
	}
	if err != nil {
		return fmt.Errorf("--regions: %w", err)
	}
	rt, err := cdn.NewRouter(cdn.RouterConfig{Map: m, PlaybackKeys: keys, TrustForwardedFor: trusted,
		LoadFactor: *loadFactor, ProbeInterval: *probeInterval, ProbeTimeout: *probeTimeout, DownAfter: *downAfter, Logger: log})
	if err != nil {
		return err
	}
	ln, err := listen("listen", *listenAddr)
	if err != nil {
		return err
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	go rt.Run(bg)
	if *regions != "" {
		go rt.FollowRegionMap(bg, *regions, m, time.Second)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", readyz(map[string]func(context.Context) error{"edges": func(context.Context) error { return rt.Ready() }}))
	mux.Handle("/metrics", metricsHandler(newRegistry(rt.Collector())))
	mux.Handle("/", rt)
	return serveUntilDone(ctx, log, defaultGrace, newServer("router", ln, mux, log))
}

// parsePrefixes reads CIDR[,CIDR...]; a bare address stands for itself alone.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a network like 10.0.0.0/8 or an address", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// followSchools reads the region map at path for ingest, and follows its edits: the function returned
// names the region that serves a school (nil when path is empty). signed says whether ingest signs
// playback URLs, the only place the region can travel.
func followSchools(ctx context.Context, path string, signed bool, log *slog.Logger) (func(string) string, error) {
	if path == "" {
		return nil, nil
	}
	if !signed {
		return nil, fmt.Errorf("--regions %s: the student's region travels in signed playback URLs: give --playback-keys too", path)
	}
	m, err := cdn.LoadRegionMap(path)
	if err != nil {
		return nil, fmt.Errorf("--regions: %w", err)
	}
	var cur atomic.Pointer[cdn.RegionMap]
	cur.Store(m)
	go cdn.WatchRegionMap(ctx, path, m, time.Second, log, nil, func(m *cdn.RegionMap) error {
		cur.Store(m)
		return nil
	})
	return func(school string) string { return cur.Load().SchoolRegion(school) }, nil
}
