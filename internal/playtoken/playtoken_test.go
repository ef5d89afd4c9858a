package playtoken

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// testKeys are fixed so that the fuzz seed corpus in testdata/fuzz (minted with them) stays valid.
func testKeys(t testing.TB) Keys {
	t.Helper()
	keys, err := ParseKeys("k2:" + strings.Repeat("ab", 32) + ", k1:" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

var t0 = time.Unix(1_800_000_000, 0)

func TestParseKeys(t *testing.T) {
	secret32 := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		in      string
		ids     []string
		wantErr string
	}{
		{in: "", ids: []string{}},
		{in: "a:" + strings.Repeat("0f", 16), ids: []string{"a"}},
		{in: "a:" + base64.StdEncoding.EncodeToString(secret32) + ",b:" + base64.RawURLEncoding.EncodeToString(secret32), ids: []string{"a", "b"}},
		{in: " new : " + base64.RawStdEncoding.EncodeToString(secret32) + " , old:" + strings.Repeat("AB", 20) + ",", ids: []string{"new", "old"}},
		{in: "a:" + strings.Repeat("0f", 15), wantErr: "at least 16"},
		{in: "a:!!!notbase64!!!", wantErr: "neither hex nor base64"},
		{in: base64.StdEncoding.EncodeToString(secret32), wantErr: "KEYID:SECRET"},
		{in: "bad id:" + strings.Repeat("0f", 16), wantErr: "key id"},
		{in: strings.Repeat("x", 17) + ":" + strings.Repeat("0f", 16), wantErr: "key id"},
		{in: "a:" + strings.Repeat("0f", 16) + ",a:" + strings.Repeat("1f", 16), wantErr: "twice"},
	} {
		keys, err := ParseKeys(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseKeys(%q) err = %v, want it to mention %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseKeys(%q): %v", tc.in, err)
			continue
		}
		if got := strings.Join(keys.IDs(), ","); got != strings.Join(tc.ids, ",") {
			t.Errorf("ParseKeys(%q) ids = %q, want %q", tc.in, got, tc.ids)
		}
	}
	keys, _ := ParseKeys("h:" + strings.Repeat("0f", 16))
	if string(keys[0].Secret) != strings.Repeat("\x0f", 16) {
		t.Errorf("hex secret decoded as %x", keys[0].Secret)
	}
}

func TestParseKeysDoesNotEchoSecrets(t *testing.T) {
	secret := "c2VjcmV0c2VjcmV0c2VjcmV0"
	_, err := ParseKeys(secret)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v: want an error that does not contain the secret", err)
	}
}

func TestMintVerify(t *testing.T) {
	keys := testKeys(t)
	tok := Mint(keys, "abcdefgh23456789", t0.Add(time.Hour), "eu")
	if strings.ContainsAny(tok, "/+=?#%") {
		t.Fatalf("token %q is not a clean URL path segment", tok)
	}
	if n := len(tok); n > 80 {
		t.Errorf("token is %d characters; it should stay compact", n)
	}
	c, err := Verify(keys, tok, "abcdefgh23456789", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{KeyID: "k2", Lecture: "abcdefgh23456789", Expires: t0.Add(time.Hour), Region: "eu"}
	if !c.Expires.Equal(want.Expires) || c.KeyID != want.KeyID || c.Lecture != want.Lecture || c.Region != want.Region {
		t.Errorf("claims = %+v, want %+v", c, want)
	}
	if _, err := Verify(keys, Mint(keys, "lec", t0.Add(time.Minute), ""), "lec", t0); err != nil {
		t.Errorf("token without region: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	keys := testKeys(t)
	const lec = "abcdefgh23456789"
	good := Mint(keys, lec, t0.Add(time.Hour), "")
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other, _ := ParseKeys("k2:" + strings.Repeat("cd", 32))
	unknown, _ := ParseKeys("zz:" + strings.Repeat("ab", 32))

	for _, tc := range []struct {
		name    string
		keys    Keys
		token   string
		lecture string
		now     time.Time
		want    error
	}{
		{"expired", keys, good, lec, t0.Add(time.Hour), ErrExpired},
		{"long expired", keys, good, lec, t0.Add(48 * time.Hour), ErrExpired},
		{"other lecture", keys, good, "zzzzzzzzzzzzzzzz", t0, ErrWrongLecture},
		{"lecture prefix", keys, good, lec[:8], t0, ErrWrongLecture},
		{"tampered lecture byte", keys, flip(5), lec, t0, ErrBadMAC},
		{"tampered expiry", keys, flip(1 + 1 + 2 + 1 + len(lec)), lec, t0, ErrBadMAC},
		{"tampered mac", keys, flip(len(raw) - 1), lec, t0, ErrBadMAC},
		{"same kid, other secret", other, good, lec, t0, ErrBadMAC},
		{"unknown kid", unknown, good, lec, t0, ErrUnknownKey},
		{"no keys", nil, good, lec, t0, ErrUnknownKey},
		{"tampered kid", keys, flip(2), lec, t0, ErrUnknownKey},
		{"wrong version", keys, flip(0), lec, t0, ErrMalformed},
		{"truncated", keys, good[:len(good)-3], lec, t0, ErrMalformed},
		{"extra byte", keys, base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), raw...), 0)), lec, t0, ErrMalformed},
		{"padded", keys, good + "=", lec, t0, ErrMalformed},
		{"std alphabet", keys, strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+", lec, t0, ErrMalformed},
		{"empty", keys, "", lec, t0, ErrMalformed},
		{"huge", keys, strings.Repeat("A", 10000), lec, t0, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Verify(tc.keys, tc.token, tc.lecture, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if c != (Claims{}) {
				t.Errorf("claims %+v returned with an error", c)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldKeys, _ := ParseKeys("old:" + strings.Repeat("11", 32))
	rotated, _ := ParseKeys("new:" + strings.Repeat("22", 32) + ",old:" + strings.Repeat("11", 32))
	retired, _ := ParseKeys("new:" + strings.Repeat("22", 32))

	oldTok := Mint(oldKeys, "lec", t0.Add(time.Hour), "")
	newTok := Mint(rotated, "lec", t0.Add(time.Hour), "")
	if c, err := Verify(rotated, newTok, "lec", t0); err != nil || c.KeyID != "new" {
		t.Fatalf("rotated keys mint with the first key: %+v, %v", c, err)
	}
	if _, err := Verify(rotated, oldTok, "lec", t0); err != nil {
		t.Errorf("a token of the old key must verify during rotation: %v", err)
	}
	if _, err := Verify(oldKeys, newTok, "lec", t0); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("an edge not yet given the new key: %v, want ErrUnknownKey", err)
	}
	if _, err := Verify(retired, oldTok, "lec", t0); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a retired key must stop verifying: %v", err)
	}
}

func TestMintPanicsOnMisuse(t *testing.T) {
	keys := testKeys(t)
	for name, f := range map[string]func(){
		"no keys":      func() { Mint(nil, "lec", t0, "") },
		"long lecture": func() { Mint(keys, strings.Repeat("x", 256), t0, "") },
		"long region":  func() { Mint(keys, "lec", t0, strings.Repeat("x", 256)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Mint did not panic", name)
				}
			}()
			f()
		}()
	}
}

// FuzzVerify checks that no input makes Verify panic or accept a token the keys did not mint for that
// lecture and time, and that Mint round-trips any lecture id and region.
func FuzzVerify(f *testing.F) {
	keys := testKeys(f)
	f.Add(Mint(keys, "abcdefgh23456789", t0.Add(time.Hour), "eu"), "abcdefgh23456789", t0.Unix(), "eu")
	f.Add(Mint(keys[1:], "abcdefgh23456789", t0.Add(time.Hour), ""), "abcdefgh23456789", t0.Unix(), "")
	f.Add("", "", int64(0), "")
	f.Fuzz(func(t *testing.T, token, lecture string, nowUnix int64, region string) {
		now := time.Unix(nowUnix, 0)
		c, err := Verify(keys, token, lecture, now)
		if err == nil {
			if c.Lecture != lecture || !now.Before(c.Expires) {
				t.Fatalf("accepted %q for %q at %v: claims %+v", token, lecture, now, c)
			}
			// Only a token minted by one of the keys for exactly these claims is accepted.
			var signer Keys
			for i := range keys {
				if keys[i].ID == c.KeyID {
					signer = keys[i : i+1]
				}
			}
			if signer == nil {
				t.Fatalf("accepted a token of key %q, which is not configured", c.KeyID)
			}
			if again := Mint(signer, c.Lecture, c.Expires, c.Region); again != token {
				t.Fatalf("accepted %q, but the key mints %q for its claims", token, again)
			}
		} else if c != (Claims{}) {
			t.Fatalf("claims %+v returned with error %v", c, err)
		}

		if len(lecture) > 255 || len(region) > 255 || nowUnix < 0 || nowUnix > 1<<40 {
			return
		}
		tok := Mint(keys, lecture, now.Add(time.Minute), region)
		c, err = Verify(keys, tok, lecture, now)
		if err != nil || c.Lecture != lecture || c.Region != region || !c.Expires.Equal(now.Add(time.Minute)) {
			t.Fatalf("round trip of lecture %q region %q: %+v, %v", lecture, region, c, err)
		}
		if _, err := Verify(keys, tok, lecture, now.Add(time.Minute)); !errors.Is(err, ErrExpired) {
			t.Fatalf("token at its expiry: %v, want ErrExpired", err)
		}
	})
}
