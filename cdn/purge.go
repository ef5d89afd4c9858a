package cdn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PurgePath is where an edge accepts purge requests (see [Config.PurgeSecret]).
const PurgePath = "/_lectern/purge"

// purgeState orders purges against fills. A fill reads the generation before it looks anything up
// and stores its result only if the generation is unchanged; the check and the store happen under
// the read lock, and a purge bumps the generation and sweeps the tiers under the write lock. So a
// fill that stored before a purge is swept by it, and one that would store after it sees the new
// generation and does not: a purged object is never served from the cache again. A purge may also
// keep unrelated fills running at that moment from being stored; they are fetched again later.
type purgeState struct {
	mu  sync.RWMutex
	gen atomic.Uint64
}

func (p *purgeState) generation() uint64 { return p.gen.Load() }

// store puts ent in the memory tier unless a purge has run since generation gen.
func (e *Edge) store(key string, ent *entry, gen uint64) bool {
	e.purge.mu.RLock()
	defer e.purge.mu.RUnlock()
	if e.purge.gen.Load() != gen {
		return false
	}
	return e.mem.set(key, ent)
}

// Purge removes cached objects and returns how many entries it removed. A prefix ending in "/"
// removes every key under it ("/hls/LECTURE/" is a whole lecture); any other value removes that exact
// path with any query string. Keys are URL paths as requests spell them (escaped), without the
// playback token of /s/{token}/ URLs. Fills in flight for a purged key are detached: requests
// already waiting for them get their answer, later ones start a new fill, and nothing fetched before
// the purge is stored after it.
func (e *Edge) Purge(prefix string) int {
	match := purgeMatcher(prefix)
	e.purge.mu.Lock()
	defer e.purge.mu.Unlock()
	e.purge.gen.Add(1)

	e.flights.mu.Lock()
	for key := range e.flights.m {
		if match(key) {
			delete(e.flights.m, key)
		}
	}
	e.flights.mu.Unlock()

	n := e.mem.removeMatching(match)
	e.stats.Purged.Add(int64(n))
	return n
}

func purgeMatcher(prefix string) func(string) bool {
	if strings.HasSuffix(prefix, "/") {
		return func(key string) bool { return strings.HasPrefix(key, prefix) }
	}
	return func(key string) bool {
		return key == prefix || (strings.HasPrefix(key, prefix) && key[len(prefix)] == '?')
	}
}

// removeMatching removes every entry whose key matches and returns how many it removed.
func (m *memoryTier) removeMatching(match func(string) bool) int {
	n := 0
	for key := range m.cache.Keys() {
		if match(key) {
			if _, ok := m.cache.Invalidate(key); ok {
				n++
			}
		}
	}
	return n
}

// purgeRequest is the body of POST /_lectern/purge: exactly one of the two fields.
type purgeRequest struct {
	// Prefix removes everything under a folder; it ends in "/".
	Prefix string `json:"prefix"`
	// Path removes one object (with any query string); it does not end in "/".
	Path string `json:"path"`
}

type purgeResponse struct {
	Purged int `json:"purged"`
}

// servePurge answers POST /_lectern/purge with Authorization: Bearer SECRET.
func (e *Edge) servePurge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if e.purgeSecret == nil {
		writeText(w, r, http.StatusNotFound, "not found\n", "")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeText(w, r, http.StatusMethodNotAllowed, "method not allowed\n", "")
		return
	}
	if !e.purgeAuthorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lectern-edge"`)
		writeText(w, r, http.StatusUnauthorized, "unauthorized\n", "")
		return
	}
	var req purgeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeText(w, r, http.StatusBadRequest, "bad request: want JSON {\"prefix\": \"/hls/ID/\"} or {\"path\": \"/hls/ID/...\"}\n", "")
		return
	}
	target, err := req.target()
	if err != nil {
		writeText(w, r, http.StatusBadRequest, "bad request: "+err.Error()+"\n", "")
		return
	}
	n := e.Purge(target)
	e.log.Info("edge purge", slog.String("prefix", target), slog.Int("purged", n))
	body, _ := json.Marshal(purgeResponse{Purged: n})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
}

func (p purgeRequest) target() (string, error) {
	switch {
	case (p.Prefix == "") == (p.Path == ""):
		return "", errors.New(`give exactly one of "prefix" and "path"`)
	case p.Prefix != "" && (!strings.HasPrefix(p.Prefix, "/") || !strings.HasSuffix(p.Prefix, "/")):
		return "", errors.New(`"prefix" must start and end with "/"`)
	case p.Prefix != "":
		return p.Prefix, nil
	case !strings.HasPrefix(p.Path, "/") || strings.HasSuffix(p.Path, "/"):
		return "", errors.New(`"path" must start with "/" and not end with "/" (use "prefix" for a folder)`)
	}
	return p.Path, nil
}

// purgeAuthorized compares the bearer secret in constant time. Both sides are hashed first, so the
// comparison does not reveal the secret's length either.
func (e *Edge) purgeAuthorized(authz string) bool {
	scheme, secret, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return subtle.ConstantTimeCompare(got[:], e.purgeSecret) == 1
}

// Purger tells edges to drop cached objects, for ingest when a lecture is deleted or replaced.
// prefix follows [Edge.Purge]: ending in "/" for a folder, an exact path otherwise. Purge returns
// an error when any edge could not be told; the edges that could have purged.
type Purger interface {
	Purge(ctx context.Context, prefix string) error
}

// LocalPurger purges an edge running in the same process (lectern serve).
type LocalPurger struct{ Edge *Edge }

func (l LocalPurger) Purge(_ context.Context, prefix string) error {
	if !strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("cdn: purge %q: must start with /", prefix)
	}
	l.Edge.Purge(prefix)
	return nil
}

// HTTPPurger purges remote edges through their POST /_lectern/purge endpoint.
type HTTPPurger struct {
	// Edges are the edges' base URLs, e.g. http://edge-1:8082.
	Edges []string
	// Secret is the edges' --purge-secret.
	Secret string
	// Client sends the requests. Default: http.DefaultClient.
	Client *http.Client
	// Timeout bounds each edge's request. Default: 10s.
	Timeout time.Duration
}

// Purge tells every edge at once; an edge that is down or refuses does not stop the others. The
// error joins one error per failed edge, each naming the edge. There is no retry: an edge that missed
// a purge still drops the objects when their freshness ends.
func (p HTTPPurger) Purge(ctx context.Context, prefix string) error {
	req := purgeRequest{Path: prefix}
	if strings.HasSuffix(prefix, "/") {
		req = purgeRequest{Prefix: prefix}
	}
	if _, err := req.target(); err != nil {
		return fmt.Errorf("cdn: purge %q: %v", prefix, err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	errs := make([]error, len(p.Edges))
	var wg sync.WaitGroup
	for i, edge := range p.Edges {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := purgeOne(ctx, client, edge, p.Secret, body); err != nil {
				errs[i] = fmt.Errorf("purge %s on edge %s: %w", prefix, edge, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func purgeOne(ctx context.Context, client *http.Client, edge, secret string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(edge, "/")+PurgePath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
