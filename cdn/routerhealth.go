package cdn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// probeConcurrency bounds the probes in flight, so that a map of hundreds of edges is probed in a
// few timeouts at worst without a burst of hundreds of connections.
const probeConcurrency = 16

// reportProbeGap is the least time between two probes of an edge that players report failing, so
// that reports (which anyone can send) cost each edge at most one extra probe a second.
const reportProbeGap = time.Second

// Run probes the edges' /readyz and decays their session counts until ctx is done. Without Run
// every edge keeps the health it started with (in service) and counts never decay.
func (r *Router) Run(ctx context.Context) {
	decay := time.NewTicker(r.cfg.SessionHalfLife)
	defer decay.Stop()
	var rounds <-chan time.Time
	sem := make(chan struct{}, probeConcurrency)
	var busy atomic.Bool // a round still probing: the next tick is skipped
	round := func() {
		if !busy.CompareAndSwap(false, true) {
			return
		}
		go func() {
			defer busy.Store(false)
			r.probeAll(ctx, sem)
		}()
	}
	if r.cfg.ProbeInterval > 0 {
		t := time.NewTicker(r.cfg.ProbeInterval)
		defer t.Stop()
		rounds = t.C
		round()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-decay.C:
			r.decay()
		case <-rounds:
			round()
		case st := <-r.probe:
			go func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				r.probeEdge(ctx, st, true)
			}()
		}
	}
}

func (r *Router) probeAll(ctx context.Context, sem chan struct{}) {
	done := make(chan struct{})
	edges := r.table.Load().listed
	for _, e := range edges {
		go func() {
			defer func() { done <- struct{}{} }()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			r.probeEdge(ctx, e.st, false)
		}()
	}
	for range edges {
		<-done
	}
}

// probeEdge asks the edge's /readyz. DownAfter failures in a row take it out of service; one answer
// 2xx puts it back. A probe made because the edge was reported (or newly listed) takes it out at its
// first failure: the report was the first sign.
func (r *Router) probeEdge(ctx context.Context, st *edgeState, prompt bool) {
	st.lastProbe.Store(time.Now().UnixNano())
	err := r.readyz(ctx, st.url)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		st.fails.Store(0)
		if !st.up.Swap(true) {
			r.log.Info("edge in service", slog.String("edge", st.url))
		}
		return
	}
	n := st.fails.Add(1)
	if (prompt || int(n) >= r.cfg.DownAfter) && st.up.Swap(false) {
		r.log.Warn("edge out of service", slog.String("edge", st.url), slog.Any("err", err), slog.Int("failed_probes", int(n)))
	}
}

func (r *Router) readyz(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	res, err := r.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return errors.New("readyz answered " + res.Status)
	}
	return nil
}

// report is a player's word that it could not reach edge: the edge is probed at once (at most once
// a reportProbeGap), and out of service if that probe fails too.
func (r *Router) report(edge string) {
	r.stats.Reported.Add(1)
	if r.cfg.ProbeInterval < 0 {
		return
	}
	st := r.table.Load().byURL[canonicalBaseURL(edge)]
	if st == nil {
		return
	}
	last, now := st.lastProbe.Load(), time.Now().UnixNano()
	if now-last < int64(reportProbeGap) || !st.lastProbe.CompareAndSwap(last, now) {
		return
	}
	select {
	case r.probe <- st:
	default:
	}
}

// SetEdgeUp puts the edge (its base URL, spelled as in the map or any way canonicalBaseURL
// equates with it) in service or out of it, as a probe's answer would, and reports whether the map
// lists it. Probes, when they run, overrule it at their next answer; it is for routers that run
// without them (RouterConfig.ProbeInterval < 0), such as the model of `lectern simulate`.
func (r *Router) SetEdgeUp(edge string, up bool) bool {
	st := r.table.Load().byURL[canonicalBaseURL(edge)]
	if st == nil {
		return false
	}
	st.fails.Store(0)
	st.up.Store(up)
	return true
}

// decay halves every edge's session count: a session counts fully when it starts and fades after.
func (r *Router) decay() {
	for _, e := range r.table.Load().listed {
		for {
			n := e.st.sessions.Load()
			if e.st.sessions.CompareAndSwap(n, n/2) {
				break
			}
		}
	}
}

// Ready reports whether some edge of the map is in service.
func (r *Router) Ready() error {
	for _, e := range r.table.Load().listed {
		if !e.drain && e.st.up.Load() {
			return nil
		}
	}
	return errors.New("no edge in service")
}
