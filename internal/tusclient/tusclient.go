// Package tusclient is a small client for the tus 1.0 resumable upload protocol (core and creation
// extension), enough to send a file to a tusd server and to finish it after a dropped connection, a
// restarted server or a restarted client.
//
// # Use
//
// Create makes an upload and returns its URL; Offset asks the server how many bytes it holds (HEAD); Upload
// sends a file from an offset with PATCH requests of at most ChunkSize bytes, streamed from an io.ReaderAt
// (a chunk is never held in memory). A client that keeps the upload URL (the lectern CLI writes it to a
// state file) resumes later with Offset then Upload.
//
// # Errors
//
// Network errors, 5xx and 423 (locked) make Upload wait, re-read the offset with HEAD and go on from there,
// for a bounded number of attempts without progress; 409 (wrong offset) re-reads the offset at once. An
// upload the server no longer has (404, 410) gives an error for which errors.Is(err, ErrGone) is true: the
// caller starts a new one. Every other answer is an *Error carrying the server's message, read from a
// {"error":{"code","message"}} JSON body or from tusd's plain-text one.
package tusclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultChunkSize is the PATCH size New sets: large enough that per-request overhead vanishes on a fast
// link, small enough that a dropped connection on a slow one loses little that was not yet stored.
const DefaultChunkSize int64 = 64 << 20

const tusVersion = "1.0.0"

var (
	// ErrGone is matched (errors.Is) by the error of Offset or Upload when the server answers 404 or 410:
	// the upload expired, was terminated or never existed, and its bytes cannot be resumed.
	ErrGone = errors.New("upload is gone from the server")
	// ErrStopped is returned by Upload when the upload's offset reached Client.StopAfter.
	ErrStopped = errors.New("upload stopped at the requested offset")
)

// Client sends tus requests. The zero value works (one PATCH for the whole remainder, default retries);
// New returns one with DefaultChunkSize.
type Client struct {
	// HTTP sends the requests (default http.DefaultClient). It should have no overall Timeout: the last
	// PATCH of an upload may return only after the server has validated the whole file.
	HTTP *http.Client
	// Header is added to every request, e.g. Authorization.
	Header http.Header
	// ChunkSize is the most bytes one PATCH carries; 0 sends the whole remainder in one request.
	ChunkSize int64
	// Retries bounds the consecutive failed attempts (network error, 5xx, 423, 409) that made no progress
	// before Upload gives up. 0 means 8; negative means none.
	Retries int
	// Backoff is the wait before the first retry, doubled after each further failure up to 30 s (default 1 s).
	Backoff time.Duration
	// StopAfter, when positive, makes Upload stop with ErrStopped once the upload's offset reaches it; the
	// last PATCH is cut to end there. Tests (and the CLI's test hook) use it to interrupt an upload at an
	// exact byte.
	StopAfter int64
}

// New returns a client that adds header to every request and sends DefaultChunkSize chunks.
func New(header http.Header) *Client {
	return &Client{Header: header, ChunkSize: DefaultChunkSize}
}

// Error is a tus request the server refused.
type Error struct {
	Method string // request method: POST (create), HEAD, PATCH
	Status int    // HTTP status
	// Code and Message come from the body: {"error":{"code","message"}}, or tusd's "ERR_CODE: message".
	Code, Message string
	gone          bool
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("tus %s: %s (HTTP %d)", e.Method, msg, e.Status)
}

// Is makes errors.Is(err, ErrGone) true for a 404 or 410 on an upload URL.
func (e *Error) Is(target error) bool { return target == ErrGone && e.gone }

// retryable says whether the request may succeed when sent again after re-reading the offset.
func (e *Error) retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusLocked || e.Status == http.StatusConflict
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		req.Header[k] = slices.Clone(vs)
	}
	req.Header.Set("Tus-Resumable", tusVersion)
	return req, nil
}

// Create makes an upload of size bytes at endpoint (the server's tus base URL) and returns the upload's
// URL, resolved against endpoint when the server's Location is relative.
func (c *Client) Create(ctx context.Context, endpoint string, size int64, metadata map[string]string) (string, error) {
	base, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("tus endpoint %q: %w", endpoint, err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, endpoint, http.NoBody)
	if err != nil {
		return "", err
	}
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	if len(metadata) > 0 {
		req.Header.Set("Upload-Metadata", encodeMetadata(metadata))
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return "", err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusCreated {
		return "", responseError(resp, false)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("tus POST %s: 201 without a Location", endpoint)
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("tus POST %s: Location %q: %w", endpoint, loc, err)
	}
	return u.String(), nil
}

// encodeMetadata writes the Upload-Metadata header: "key base64(value)" pairs, keys sorted.
func encodeMetadata(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + " " + base64.StdEncoding.EncodeToString([]byte(m[k]))
	}
	return strings.Join(pairs, ",")
}

// Offset asks the server how many bytes of the upload it holds (HEAD). length is the upload's declared
// size, or -1 when the server does not say. An upload the server no longer has gives an error matching
// ErrGone.
func (c *Client) Offset(ctx context.Context, uploadURL string) (offset, length int64, err error) {
	req, err := c.newRequest(ctx, http.MethodHead, uploadURL, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return 0, 0, responseError(resp, true)
	}
	offset, err = headerInt(resp, "Upload-Offset")
	if err != nil {
		return 0, 0, err
	}
	length = -1
	if resp.Header.Get("Upload-Length") != "" {
		if length, err = headerInt(resp, "Upload-Length"); err != nil {
			return 0, 0, err
		}
	}
	return offset, length, nil
}

func headerInt(resp *http.Response, name string) (int64, error) {
	v := resp.Header.Get(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("tus %s: bad %s header %q", resp.Request.Method, name, v)
	}
	return n, nil
}

// responseError reads the server's refusal. gone marks 404 and 410 as ErrGone (for upload URLs, not for
// the creation endpoint, where a 404 means something else).
func responseError(resp *http.Response, gone bool) *Error {
	e := &Error{Method: resp.Request.Method, Status: resp.StatusCode}
	e.gone = gone && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var j struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &j) == nil && (j.Error.Message != "" || j.Error.Code != "") {
		e.Code, e.Message = j.Error.Code, j.Error.Message
		return e
	}
	text := strings.TrimSpace(string(body))
	if code, msg, ok := strings.Cut(text, ": "); ok && strings.HasPrefix(code, "ERR_") && !strings.ContainsAny(code, " \n") {
		e.Code, text = code, msg // tusd's own errors: "ERR_UPLOAD_NOT_FOUND: upload not found"
	}
	if len(text) > 500 {
		text = text[:500] + "..."
	}
	e.Message = text
	return e
}

// closeBody drains a little of the body so the connection can be reused, then closes it.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
