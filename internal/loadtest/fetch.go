package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// newClient returns the one client every student shares. Its transport keeps an idle connection
// per student, so that a student's requests reuse a connection as a browser's do, and it refuses to
// dial anything but a loopback address, redirects included.
func newClient(students int) (*http.Client, *http.Transport) {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return fmt.Errorf("%w: refusing to connect to %s", ErrNotLoopback, address)
			}
			return nil
		},
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: students + 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{Transport: tr}, tr
}

const (
	// tries is how many times a request is made before the student gives up (hls.js retries
	// fragment and playlist loads a few times with a short backoff).
	tries = 3
	// retryDelay is the first backoff; it doubles each try.
	retryDelay = 200 * time.Millisecond
)

// errTimeout is the cause of an attempt cancelled for waiting too long.
var errTimeout = errors.New("timeout")

// errStopped is returned when the run ends (max wall time, or the caller's context) mid-request.
var errStopped = errors.New("stopped")

// failure is a request that failed for good, after its tries.
type failure struct {
	key string // the last attempt's error key: "503", "timeout", "reset", ...
	url string
}

func (f *failure) Error() string { return fmt.Sprintf("%s: %s", f.url, f.key) }

// fetched is one successful response.
type fetched struct {
	body []byte   // the body, when asked for
	n    int64    // body bytes
	took float64  // wall seconds from sending the request to the last byte
	url  *url.URL // the URL that answered, after redirects
}

// bufPool holds the read buffers of downloads: only students downloading hold one. Larger reads cost
// the client less CPU (128 KiB ones a tenth less than 32 KiB at 1000 students: fewer reads and pacing
// sleeps); 64 KiB keeps thousands of downloads at once within a few hundred MiB.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// fetch GETs u with the CMCD data c, retrying as hls.js does: transport errors and 5xx are tried
// again, other statuses are not. The body is read at most at the student's bandwidth (times the
// speed-up) and kept when keep is true. Every attempt is counted; every failed one under its error key.
func (s *student) fetch(ctx context.Context, u *url.URL, c cmcd, keep bool) (fetched, error) {
	target := *u
	q := c.encode(s.sid, s.cid)
	if target.RawQuery != "" {
		target.RawQuery += "&"
	}
	target.RawQuery += "CMCD=" + url.QueryEscape(q)
	var key string
	for try := 0; try < tries; try++ {
		if try > 0 {
			if err := sleep(ctx, retryDelay<<(try-1)); err != nil {
				return fetched{}, errStopped
			}
		}
		f, status, err := s.attempt(ctx, &target, keep)
		if ctx.Err() != nil {
			return fetched{}, errStopped
		}
		s.count.requests++
		s.count.bytes += f.n
		s.r.requests.Add(1)
		s.r.bytes.Add(f.n)
		if err == nil {
			return f, nil
		}
		key = err.Error()
		s.count.errors[key]++
		s.r.errors.Add(1)
		if status >= 400 && status < 500 {
			break
		}
	}
	return fetched{}, &failure{key: key, url: u.Path}
}

// attempt makes one request. Its error, if any, is the error key.
func (s *student) attempt(ctx context.Context, u *url.URL, keep bool) (fetched, int, error) {
	timeout := s.r.cfg.Timeout
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(timeout, func() { cancel(errTimeout) })
	defer timer.Stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fetched{}, 0, errors.New("bad-url")
	}
	start := time.Now()
	resp, err := s.r.client.Do(req)
	if err != nil {
		return fetched{}, 0, errors.New(errorKey(err, context.Cause(actx)))
	}
	defer resp.Body.Close()
	f := fetched{url: resp.Request.URL}
	var sink io.Writer = io.Discard
	var kept bytes.Buffer
	if keep {
		sink = &kept
	}
	rate := s.bandwidth * s.r.cfg.Speed // bit/s of wall time
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	bodyStart := time.Now()
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			sink.Write(buf[:k])
			f.n += int64(k)
			timer.Reset(timeout)
			// Hold the download to the student's bandwidth: sleep while ahead of it.
			due := bodyStart.Add(time.Duration(float64(f.n*8) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				timer.Stop()
				if sleep(actx, d) != nil {
					return f, 0, errStopped
				}
				timer.Reset(timeout)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return f, resp.StatusCode, errors.New(errorKey(rerr, context.Cause(actx)))
		}
	}
	f.took = time.Since(start).Seconds()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return f, resp.StatusCode, errors.New(strconv.Itoa(resp.StatusCode))
	}
	f.body = kept.Bytes()
	return f, resp.StatusCode, nil
}

// errorKey names a transport failure for the report.
func errorKey(err, cause error) string {
	var ne net.Error
	switch {
	case errors.Is(cause, errTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, ErrNotLoopback):
		return "not-loopback"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "eof"
	}
	return "transport"
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cmcd is the Common Media Client Data (CTA-5004) of one request, sent as hls.js sends it: the CMCD
// query argument, keys in alphabetical order, strings quoted. Zero numbers are left out.
type cmcd struct {
	ot      string // object type: m (playlist), i (init), v (video), a (audio)
	br, tb  int    // encoded and top bitrate, kb/s
	d       int    // object duration, ms
	bl      int    // buffer length, ms
	mtp     int    // measured throughput, kb/s
	nor     string // next object, relative to this request's URL (URL-encoded here)
	startup bool   // su: the object is needed to start (or restart) playback
}

func (c cmcd) encode(sid, cid string) string {
	var b strings.Builder
	add := func(kv string) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv)
	}
	num := func(k string, v int) {
		if v > 0 {
			add(k + "=" + strconv.Itoa(v))
		}
	}
	media := c.ot == "v" || c.ot == "a"
	if media {
		num("bl", c.bl/100*100)
		num("br", c.br)
	}
	add("cid=" + quote(cid))
	if media {
		num("d", c.d)
	}
	num("mtp", c.mtp/100*100)
	if c.nor != "" {
		add("nor=" + quote(c.nor))
	}
	add("ot=" + c.ot)
	add("sf=h")
	add("sid=" + quote(sid))
	add("st=v")
	if c.startup {
		add("su")
	}
	if media {
		num("tb", c.tb)
	}
	return b.String()
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// relative returns the reference from the directory of from to to, URL-encoded as CMCD's nor wants
// it ("seg_00002.m4s", or "..%2F360p%2Fseg_00002.m4s" across renditions). Both URLs are on one host.
func relative(from, to *url.URL) string {
	fd := strings.Split(from.Path, "/")
	fd = fd[:len(fd)-1]
	td := strings.Split(to.Path, "/")
	i := 0
	for i < len(fd) && i < len(td)-1 && fd[i] == td[i] {
		i++
	}
	rel := strings.Repeat("../", len(fd)-i) + strings.Join(td[i:], "/")
	if to.RawQuery != "" {
		rel += "?" + to.RawQuery
	}
	return url.PathEscape(rel)
}
