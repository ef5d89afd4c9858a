package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// HeaderEvent is the event type, e.g. "lecture.ready".
	HeaderEvent = "Lectern-Event"
	// HeaderDelivery is the event id: the same on every attempt, so receivers deduplicate by it.
	HeaderDelivery = "Lectern-Delivery"
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
	HeaderSignature = "Lectern-Signature"
)

// Errors returned by Verify (test with errors.Is).
var (
	// ErrNoSignature: the header is missing, malformed, or has no v1 signature.
	ErrNoSignature = errors.New("webhook: no valid Lectern-Signature header")
	// ErrBadSignature: no v1 signature matches the body under the secret.
	ErrBadSignature = errors.New("webhook: signature does not match the body")
	// ErrTooOld: the signature is valid but its timestamp is further from now than the tolerance (a
	// replayed request, or a clock that is far off).
	ErrTooOld = errors.New("webhook: signature timestamp is outside the tolerance")
)

// Sign returns the Lectern-Signature header value for body signed at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// mac is HMAC-SHA256(secret, ts + "." + body). The timestamp is inside the MAC, so an attacker cannot
// replay an old body with a fresh time.
func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as a receiver should: header is the Lectern-Signature value, body the raw
// request body (before any JSON decoding), tolerance how far the signing time may be from now (<= 0 skips
// that check; 5 minutes is a good value). It returns nil, or an error for which errors.Is reports
// ErrNoSignature, ErrBadSignature or ErrTooOld. Unknown fields (a future v2) are ignored, and any of
// several v1 values may match.
func Verify(secret, header string, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrNoSignature)
			}
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil && len(sig) == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, sig := range sigs {
		// Compare every one in constant time; stopping early would only reveal which one matched.
		if hmac.Equal(sig, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)).Abs(); d > tolerance {
			return fmt.Errorf("%w: signed %s away from now, tolerance %s", ErrTooOld, d.Round(time.Second), tolerance)
		}
	}
	return nil
}
