// Package purge is the cache purge protocol that edges and the origin share, so that ingest can
// tell either one to drop a deleted or replaced lecture with the same request.
//
// # Targets
//
// A purge target is a URL path as requests spell it (escaped), without a playback token. A target
// ending in "/" is a prefix and removes every key under it ("/hls/LECTURE/" is a whole lecture); any
// other target removes that exact path, with any query string. [Matcher] is the one implementation of
// that rule.
//
// # Wire protocol
//
// POST /_lectern/purge with Authorization: Bearer SECRET and a JSON body {"prefix": "/hls/ID/"} or
// {"path": "/hls/ID/v1/master.m3u8"} (exactly one) is answered 200 {"purged": N}. A bad secret is
// 401, a bad body 400 with a message saying what is wanted, any method but POST 405, and a server
// configured without a secret answers 404, as if the endpoint did not exist. [Handler] serves it;
// [HTTPPurger] sends it.
//
// # Purgers
//
// [Purger] is what a caller (ingest) holds. [HTTPPurger] reaches remote servers, [Local] a cache in
// the same process, and [Multi] tells several at once (lectern serve purges its edge and its origin).
package purge

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
	"time"
)

// Path is where edges and the origin accept purge requests.
const Path = "/_lectern/purge"

// Matcher returns the predicate that says whether a cache key (a URL path, with query when it has
// one) falls under target; see the package documentation.
func Matcher(target string) func(key string) bool {
	if strings.HasSuffix(target, "/") {
		return func(key string) bool { return strings.HasPrefix(key, target) }
	}
	return func(key string) bool {
		return key == target || (strings.HasPrefix(key, target) && key[len(target)] == '?')
	}
}

// Check reports whether target is one a server accepts: it starts with "/". Whether it ends in "/"
// only decides between a prefix and a path.
func Check(target string) error {
	if !strings.HasPrefix(target, "/") {
		return fmt.Errorf("purge %q: must start with /", target)
	}
	return nil
}

// Request is the JSON body of POST /_lectern/purge: exactly one of the two fields.
type Request struct {
	// Prefix removes everything under a folder; it starts and ends in "/".
	Prefix string `json:"prefix,omitempty"`
	// Path removes one object (with any query string); it starts with "/" and does not end in "/".
	Path string `json:"path,omitempty"`
}

// RequestFor returns the request body that purges target.
func RequestFor(target string) Request {
	if strings.HasSuffix(target, "/") {
		return Request{Prefix: target}
	}
	return Request{Path: target}
}

// Target validates the request and returns what it purges.
func (p Request) Target() (string, error) {
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

// Response is the body of a successful purge.
type Response struct {
	Purged int `json:"purged"`
}

// Handler serves POST /_lectern/purge for a server called name ("edge", "origin": it names the
// WWW-Authenticate realm and the log line) that accepts secret as a bearer token. purge removes what
// a target names and returns how many entries it removed. An empty secret turns the endpoint off
// (404). log may be nil for slog.Default().
func Handler(secret string, log *slog.Logger, name string, purge func(target string) int) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{log: log, name: name, purge: purge}
	if secret != "" {
		sum := sha256.Sum256([]byte(secret))
		h.secret = sum[:]
	}
	return h
}

type handler struct {
	secret []byte // SHA-256 of the secret; nil when the endpoint is off
	log    *slog.Logger
	name   string
	purge  func(string) int
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.secret == nil {
		writeText(w, r, http.StatusNotFound, "not found\n")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeText(w, r, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	if !h.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lectern-`+h.name+`"`)
		writeText(w, r, http.StatusUnauthorized, "unauthorized\n")
		return
	}
	var req Request
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeText(w, r, http.StatusBadRequest, "bad request: want JSON {\"prefix\": \"/hls/ID/\"} or {\"path\": \"/hls/ID/...\"}\n")
		return
	}
	target, err := req.Target()
	if err != nil {
		writeText(w, r, http.StatusBadRequest, "bad request: "+err.Error()+"\n")
		return
	}
	n := h.purge(target)
	h.log.Info(h.name+" purge", slog.String("prefix", target), slog.Int("purged", n))
	body, _ := json.Marshal(Response{Purged: n})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
}

// authorized compares the bearer secret in constant time. Both sides are hashed first, so the
// comparison does not reveal the secret's length either.
func (h *handler) authorized(authz string) bool {
	scheme, secret, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return subtle.ConstantTimeCompare(got[:], h.secret) == 1
}

func writeText(w http.ResponseWriter, r *http.Request, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}

// Purger drops cached objects, for ingest when a lecture is deleted or replaced. target follows the
// package documentation: ending in "/" for a folder, an exact path otherwise. Purge returns an error
// when any cache could not be told; the others have purged.
type Purger interface {
	Purge(ctx context.Context, target string) error
}

// Local purges a cache in the same process through its Purge method (cdn.Edge.Purge,
// origin.Server.Purge).
type Local func(target string) int

func (l Local) Purge(_ context.Context, target string) error {
	if err := Check(target); err != nil {
		return err
	}
	l(target)
	return nil
}

// Multi tells every purger in order, one after another, even when some fail, and joins their
// errors. Order matters in a chain of caches: list the origin before the edges in front of it, or an
// edge purged first could refill from an origin that still holds the object.
type Multi []Purger

func (m Multi) Purge(ctx context.Context, target string) error {
	errs := make([]error, len(m))
	for i, p := range m {
		errs[i] = p.Purge(ctx, target)
	}
	return errors.Join(errs...)
}

// HTTPPurger purges remote servers through their POST /_lectern/purge endpoint.
type HTTPPurger struct {
	// URLs are the servers' base URLs, e.g. http://edge-1:8082.
	URLs []string
	// Secret is the servers' purge secret.
	Secret string
	// Role names the servers in errors ("edge"). Default: "server".
	Role string
	// Client sends the requests. Default: http.DefaultClient.
	Client *http.Client
	// Timeout bounds each server's request. Default: 10s.
	Timeout time.Duration
}

// Purge tells every server at once; a server that is down or refuses does not stop the others. The
// error joins one error per failed server, each naming it. There is no retry: a cache that missed a
// purge still drops the objects when their freshness ends.
func (p HTTPPurger) Purge(ctx context.Context, target string) error {
	req := RequestFor(target)
	if _, err := req.Target(); err != nil {
		return fmt.Errorf("purge %q: %v", target, err)
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
	role := p.Role
	if role == "" {
		role = "server"
	}
	errs := make([]error, len(p.URLs))
	var wg sync.WaitGroup
	for i, base := range p.URLs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := Send(ctx, client, base, p.Secret, body); err != nil {
				errs[i] = fmt.Errorf("purge %s on %s %s: %w", target, role, base, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Send posts one encoded [Request] to the server at base and fails unless it answers 200.
func Send(ctx context.Context, client *http.Client, base, secret string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+Path, bytes.NewReader(body))
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
