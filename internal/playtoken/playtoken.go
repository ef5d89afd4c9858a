// Package playtoken mints and verifies the signed tokens in students' playback URLs.
//
// # URL shape
//
// A playback URL is /s/{token}/hls/{lecture}/v{n}/master.m3u8. The token is a path segment in front
// of the ordinary /hls/ path, so the relative URIs inside the playlists (media playlists, segments,
// captions) resolve under the same /s/{token}/ prefix and carry the token with no playlist rewriting.
// An edge verifies the token, strips it, and serves and caches the request as /hls/{lecture}/...
//
// # Token
//
// The token is base64url without padding of
//
//	version (1 byte, 1)
//	key id length (1 byte) | key id
//	lecture id length (1 byte) | lecture id
//	expiry (uvarint, Unix seconds)
//	region length (1 byte) | region (may be empty)
//	MAC: HMAC-SHA256 over a context string and all the bytes above, truncated to 16 bytes (128 bits)
//
// The MAC covers the lecture id and the expiry, so a token opens one lecture until a time. The
// region is the student's region, from the school of the lecture's teacher: the router sends the
// student to that region's edges (cdn.Router); Verify does not judge it.
//
// # Keys and rotation
//
// Keys are named by short ids. The first key of a [Keys] mints; every key verifies. To rotate, put
// the new key first and keep the old one after it until every token it minted has expired, then
// drop it.
//
// # Errors
//
// Verify returns distinct errors (ErrMalformed, ErrUnknownKey, ErrBadMAC, ErrExpired, ErrWrongLecture)
// for counters and tests. Whoever answers a player maps all of them to one 403 with no detail, so a
// prober learns nothing about which check failed.
package playtoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Key is one signing key.
type Key struct {
	// ID names the key inside tokens: 1 to 16 characters of [A-Za-z0-9_-].
	ID string
	// Secret is at least 16 bytes, ideally 32 random bytes.
	Secret []byte
}

// Keys are the configured keys. The first one mints; all verify. An empty Keys means signed playback
// is off.
type Keys []Key

// MinSecretBytes is the shortest secret ParseKeys accepts.
const MinSecretBytes = 16

const (
	version    = 1
	macBytes   = 16
	maxKeyID   = 16
	maxField   = 255
	maxDecoded = 1 + 1 + maxKeyID + 1 + maxField + binary.MaxVarintLen64 + 1 + maxField + macBytes
	// macContext separates these MACs from anything else a deployment might sign with the same key.
	macContext = "lectern-playback\x00"
)

// Errors from Verify. Callers answer every one of them the same way.
var (
	ErrMalformed    = errors.New("playtoken: malformed token")
	ErrUnknownKey   = errors.New("playtoken: unknown key id")
	ErrBadMAC       = errors.New("playtoken: bad signature")
	ErrExpired      = errors.New("playtoken: token expired")
	ErrWrongLecture = errors.New("playtoken: token is for another lecture")
)

// Claims are what a verified token says.
type Claims struct {
	KeyID   string
	Lecture string
	Expires time.Time
	Region  string
}

// ParseKeys parses "kid1:secret1,kid2:secret2". Each secret is hex when it consists only of an even
// number of hex digits, base64 (standard or URL alphabet, padding optional) otherwise; it must decode to
// at least MinSecretBytes. Spaces around entries are ignored. An empty string gives empty Keys.
func ParseKeys(s string) (Keys, error) {
	var keys Keys
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, enc, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("playtoken: key %q: want KEYID:SECRET", redact(item))
		}
		id, enc = strings.TrimSpace(id), strings.TrimSpace(enc)
		if !validKeyID(id) {
			return nil, fmt.Errorf("playtoken: key id %q: use 1 to %d characters of A-Z a-z 0-9 _ -", id, maxKeyID)
		}
		if seen[id] {
			return nil, fmt.Errorf("playtoken: key id %q given twice", id)
		}
		seen[id] = true
		secret, err := decodeSecret(enc)
		if err != nil {
			return nil, fmt.Errorf("playtoken: key %q: %v", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return keys, nil
}

// redact keeps an error message about a malformed entry from echoing a secret into logs.
func redact(item string) string {
	if len(item) > 4 {
		return item[:4] + "..."
	}
	return item
}

func validKeyID(id string) bool {
	return id != "" && len(id) <= maxKeyID && urlAlphabet(id)
}

func decodeSecret(s string) ([]byte, error) {
	var b []byte
	var err error
	if isHex(s) {
		b, err = hex.DecodeString(s)
	} else {
		t := strings.TrimRight(s, "=")
		if strings.ContainsAny(t, "-_") {
			b, err = base64.RawURLEncoding.DecodeString(t)
		} else {
			b, err = base64.RawStdEncoding.DecodeString(t)
		}
	}
	if err != nil {
		return nil, errors.New("secret is neither hex nor base64")
	}
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("secret is %d bytes, want at least %d (e.g. openssl rand -base64 32)", len(b), MinSecretBytes)
	}
	return b, nil
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// IDs lists the key ids, for logs; it never shows secrets.
func (k Keys) IDs() []string {
	ids := make([]string, len(k))
	for i, key := range k {
		ids[i] = key.ID
	}
	return ids
}

func (k Keys) find(id string) (Key, bool) {
	for _, key := range k {
		if key.ID == id {
			return key, true
		}
	}
	return Key{}, false
}

// Mint returns a token for lectureID valid until expires, signed with the first key. region may be
// empty. Mint panics when keys is empty, the first key is invalid, or lectureID or region is longer
// than 255 bytes: those are configuration or programming errors, never a student's input.
func Mint(keys Keys, lectureID string, expires time.Time, region string) string {
	if len(keys) == 0 {
		panic("playtoken: Mint with no keys")
	}
	key := keys[0]
	if !validKeyID(key.ID) || len(key.Secret) == 0 {
		panic("playtoken: Mint with an invalid key")
	}
	if len(lectureID) > maxField || len(region) > maxField {
		panic("playtoken: lecture id or region longer than 255 bytes")
	}
	exp := max(expires.Unix(), 0)
	b := make([]byte, 0, 4+len(key.ID)+len(lectureID)+binary.MaxVarintLen64+len(region)+macBytes)
	b = append(b, version)
	b = appendField(b, key.ID)
	b = appendField(b, lectureID)
	b = binary.AppendUvarint(b, uint64(exp))
	b = appendField(b, region)
	b = append(b, mac(key.Secret, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func appendField(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func mac(secret, payload []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(macContext))
	h.Write(payload)
	return h.Sum(nil)[:macBytes]
}

// Verify checks token for lectureID at time now and returns its claims. The error is one of
// ErrMalformed, ErrUnknownKey, ErrBadMAC, ErrExpired and ErrWrongLecture. Claims are returned only
// with a nil error. The signature is checked before anything the token claims is believed.
func Verify(keys Keys, token, lectureID string, now time.Time) (Claims, error) {
	// The decoder skips \r and \n; a token is spelled with the URL alphabet alone.
	if len(token) > base64.RawURLEncoding.EncodedLen(maxDecoded) || !urlAlphabet(token) {
		return Claims{}, ErrMalformed
	}
	// Strict: the unused low bits of the last character must be zero, so one token has one spelling.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	c, payloadLen, err := parse(raw)
	if err != nil {
		return Claims{}, err
	}
	key, ok := keys.find(c.KeyID)
	if !ok {
		return Claims{}, ErrUnknownKey
	}
	if !hmac.Equal(mac(key.Secret, raw[:payloadLen]), raw[payloadLen:]) {
		return Claims{}, ErrBadMAC
	}
	if c.Lecture != lectureID {
		return Claims{}, ErrWrongLecture
	}
	if !now.Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func urlAlphabet(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parse splits a decoded token into its claims and the length of the signed payload.
func parse(raw []byte) (Claims, int, error) {
	var c Claims
	if len(raw) < 1 || raw[0] != version {
		return c, 0, ErrMalformed
	}
	p := raw[1:]
	var ok bool
	if c.KeyID, p, ok = field(p); !ok || c.KeyID == "" {
		return c, 0, ErrMalformed
	}
	if c.Lecture, p, ok = field(p); !ok {
		return c, 0, ErrMalformed
	}
	exp, n := binary.Uvarint(p)
	if n <= 0 || exp > 1<<62 {
		return c, 0, ErrMalformed
	}
	p = p[n:]
	c.Expires = time.Unix(int64(exp), 0)
	if c.Region, p, ok = field(p); !ok {
		return c, 0, ErrMalformed
	}
	if len(p) != macBytes {
		return c, 0, ErrMalformed
	}
	return c, len(raw) - macBytes, nil
}

func field(p []byte) (string, []byte, bool) {
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return "", nil, false
	}
	n := int(p[0])
	return string(p[1 : 1+n]), p[1+n:], true
}
