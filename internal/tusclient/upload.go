package tusclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

const maxBackoff = 30 * time.Second

// Upload sends bytes [offset, size) of r to the upload at uploadURL in PATCH requests of at most
// ChunkSize bytes and returns the offset the server confirmed last (size when it is done). offset is
// where the caller believes the server stands (0 after Create, Offset's answer on resume); a wrong one is
// corrected through the server's 409.
//
// progress, when not nil, is called as bytes are handed to the connection with the upload's offset
// including the bytes in flight (sent) and size (total); after a failure it goes back to the offset the
// server confirmed. It runs on the sending goroutine: it should be quick, and it may cancel ctx to stop.
//
// Errors: ctx's error when it ends; ErrStopped at StopAfter; an error matching ErrGone when the server
// lost the upload; an *Error for any other refusal (the last PATCH's 4xx carries the server's verdict on
// the file); the last failure, wrapped, when the retries run out.
func (c *Client) Upload(ctx context.Context, uploadURL string, r io.ReaderAt, offset, size int64, progress func(sent, total int64)) (int64, error) {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	retries := c.Retries
	switch {
	case retries == 0:
		retries = 8
	case retries < 0:
		retries = 0
	}
	progress(offset, size)
	failures := 0
	var lastErr error
	for offset < size {
		if c.StopAfter > 0 && offset >= c.StopAfter {
			return offset, ErrStopped
		}
		n := size - offset
		if c.ChunkSize > 0 && n > c.ChunkSize {
			n = c.ChunkSize
		}
		if c.StopAfter > 0 && offset+n > c.StopAfter {
			n = c.StopAfter - offset
		}
		next, err := c.patch(ctx, uploadURL, r, offset, n, size, progress)
		if err == nil {
			if next > offset {
				failures = 0
			}
			offset = next
			progress(offset, size)
			continue
		}
		if ctx.Err() != nil {
			return offset, ctx.Err()
		}
		var tusErr *Error
		if errors.As(err, &tusErr) && !tusErr.retryable() {
			return offset, err
		}
		lastErr = err

		// Ask the server where it stands and go on from there. A wrong offset (409) is re-read at once;
		// anything else (the network, an overloaded or restarting server, a lock still held by the request
		// that just died) first waits.
		conflict := tusErr != nil && tusErr.Status == http.StatusConflict
		for {
			failures++
			if failures > retries {
				return offset, fmt.Errorf("giving up after %d failed attempts: %w", failures, lastErr)
			}
			if !conflict {
				if err := sleep(ctx, c.backoff(failures)); err != nil {
					return offset, err
				}
			}
			conflict = false
			stored, _, err := c.Offset(ctx, uploadURL)
			if err == nil {
				if stored > offset {
					failures = 0
				}
				offset = stored
				progress(offset, size)
				break
			}
			if ctx.Err() != nil {
				return offset, ctx.Err()
			}
			if errors.As(err, &tusErr) && !tusErr.retryable() {
				return offset, err
			}
			lastErr = err
		}
	}
	return offset, nil
}

func (c *Client) backoff(failures int) time.Duration {
	d := c.Backoff
	if d <= 0 {
		d = time.Second
	}
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

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

// patch sends bytes [offset, offset+n) in one PATCH, streamed from r, and returns the server's new offset.
func (c *Client) patch(ctx context.Context, uploadURL string, r io.ReaderAt, offset, n, size int64, progress func(sent, total int64)) (int64, error) {
	var body io.Reader = http.NoBody
	if n > 0 {
		body = &progressReader{ctx: ctx, r: io.NewSectionReader(r, offset, n), at: offset, total: size, progress: progress}
	}
	req, err := c.newRequest(ctx, http.MethodPatch, uploadURL, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, responseError(resp, true)
	}
	next, err := headerInt(resp, "Upload-Offset")
	if err != nil {
		return 0, err
	}
	if next > offset+n || next < offset || (next == offset && n > 0) {
		// Treated like a failed request: Upload re-reads the offset and counts it against its retries.
		return 0, fmt.Errorf("tus PATCH: server answered offset %d for bytes %d-%d", next, offset, offset+n)
	}
	return next, nil
}

// progressReader reports the upload's offset as the transport reads the request body, and stops feeding
// it once ctx ends: the transport notices a cancelled request only between its own steps, and on a fast
// link would otherwise send much of the rest of the chunk first.
type progressReader struct {
	ctx       context.Context
	r         io.Reader
	at, total int64
	progress  func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	if n > 0 {
		p.at += int64(n)
		p.progress(p.at, p.total)
	}
	return n, err
}
