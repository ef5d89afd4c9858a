package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The scheme docs/webhooks.md describes, pinned to a value computed outside Go:
//
//	printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test
func TestSignKnownVector(t *testing.T) {
	got := Sign("whsec_test", time.Unix(1700000000, 0), []byte(`{"id":"evt_1"}`))
	want := "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"id":"evt_1","type":"lecture.ready"}`)
	signedAt := time.Unix(1700000000, 0)
	header := Sign(secret, signedAt, body)
	sig := strings.TrimPrefix(header, "t=1700000000,")
	at := signedAt.Add(30 * time.Second)
	for _, tc := range []struct {
		name      string
		secret    string
		header    string
		body      string
		tolerance time.Duration
		now       time.Time
		want      error
	}{
		{name: "valid", header: header, want: nil},
		{name: "valid, spaces and an unknown field", header: " t=1700000000 , v2=abc, " + sig, want: nil},
		{name: "second of two v1 matches (secret rotation)", header: "t=1700000000,v1=" + strings.Repeat("00", 32) + "," + sig, want: nil},
		{name: "wrong secret", secret: "whsec_other", header: header, want: ErrBadSignature},
		{name: "tampered body", header: header, body: `{"id":"evt_2","type":"lecture.ready"}`, want: ErrBadSignature},
		{name: "body with a trailing newline", header: header, body: string(body) + "\n", want: ErrBadSignature},
		{name: "timestamp changed", header: "t=1700000001," + sig, want: ErrBadSignature},
		{name: "too old", header: header, now: signedAt.Add(6 * time.Minute), want: ErrTooOld},
		{name: "from the future", header: header, now: signedAt.Add(-6 * time.Minute), want: ErrTooOld},
		{name: "old but no tolerance", header: header, now: signedAt.Add(24 * time.Hour), tolerance: -1, want: nil},
		{name: "empty", header: "", want: ErrNoSignature},
		{name: "no timestamp", header: sig, want: ErrNoSignature},
		{name: "no v1", header: "t=1700000000", want: ErrNoSignature},
		{name: "bad timestamp", header: "t=soon," + sig, want: ErrNoSignature},
		{name: "two timestamps", header: "t=1700000000,t=1700000000," + sig, want: ErrNoSignature},
		{name: "v1 not hex", header: "t=1700000000,v1=zz", want: ErrNoSignature},
		{name: "v1 truncated", header: header[:len(header)-2], want: ErrNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b, tol, now := secret, body, 5*time.Minute, at
			if tc.secret != "" {
				s = tc.secret
			}
			if tc.body != "" {
				b = []byte(tc.body)
			}
			if tc.tolerance != 0 {
				tol = tc.tolerance
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			err := verifyAt(s, tc.header, b, tol, now)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("verify = %v, want %v", err, tc.want)
			}
		})
	}
	// Verify itself uses the clock.
	if err := Verify(secret, Sign(secret, time.Now(), body), body, time.Minute); err != nil {
		t.Errorf("Verify of a fresh signature = %v", err)
	}
}
