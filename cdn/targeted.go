package cdn

import (
	"net/http"
	"strings"
)

// cdnCacheControl is the targeted field of RFC 9213 §3 that the edge, a CDN cache, obeys. The target
// list is just this one field.
//
// Forwarding: the field stays on the response the edge sends on (stored entries keep it). RFC 9213
// §3 says CDN caches that use it "will typically forward this header so that downstream CDN caches
// can use it as well" and only MAY remove it; an edge's client may be another edge (a tiered
// deployment), and browsers ignore it. Other targeted fields (not on the list) pass through
// untouched, as §2.2 requires.
const cdnCacheControl = "Cdn-Cache-Control"

// targetedDirectives parses the CDN-Cache-Control field lines of h. ok is false when the field is
// absent, empty or invalid: RFC 9213 §2.2 then has the cache ignore it and fall back to Cache-Control
// and Expires. When ok is true, the cache ignores Cache-Control and Expires instead.
//
// The field is a Structured Fields Dictionary (RFC 8941 §3.2), parsed as such rather than with the
// Cache-Control parser (RFC 9213 §2.1): a key must be lower case, the last duplicate wins, and any
// syntax error voids the whole field. Values map back to directive values as §2.1 describes:
// Boolean true is a directive without value, Integers, Tokens and Strings keep their text (a
// Decimal, say max-age=1.5, then reads as an invalid delta-seconds, which counts as stale). Boolean
// false leaves the directive out, and parameters are ignored.
func targetedDirectives(h http.Header) (d directives, ok bool) {
	lines := h.Values(cdnCacheControl)
	if len(lines) == 0 {
		return nil, false
	}
	// RFC 8941 §4.2: field lines are combined with commas, then leading and trailing spaces go.
	p := &sfParser{s: strings.Trim(strings.Join(lines, ","), " ")}
	if p.s == "" {
		return nil, false
	}
	d = directives{}
	for {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		value, present := "", true
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				if !p.innerList() {
					return nil, false
				}
			} else {
				var kind byte
				if value, kind, ok = p.bareItem(); !ok {
					return nil, false
				}
				if kind == '?' {
					present, value = value == "1", ""
				}
			}
		}
		if !p.params() {
			return nil, false
		}
		if present {
			d[key] = value
		} else {
			delete(d, key)
		}
		p.ows()
		if p.done() {
			break
		}
		if p.peek() != ',' {
			return nil, false
		}
		p.i++
		p.ows()
		if p.done() { // a trailing comma
			return nil, false
		}
	}
	if len(d) == 0 {
		// Only Boolean false members: no directive to go by, which is as good as an empty field.
		return nil, false
	}
	return d, true
}

// sfParser walks a Structured Field value (RFC 8941 §4.2), just far enough to validate a Dictionary
// and read its bare items as text.
type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

// ows skips optional whitespace (SP and HTAB) around Dictionary members.
func (p *sfParser) ows() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// key parses a key: lcalpha or "*", then lcalpha, DIGIT, "_", "-", "." or "*" (RFC 8941 §4.2.3.3).
func (p *sfParser) key() (string, bool) {
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z' || c == '*') {
		return "", false
	}
	for p.i++; !p.done(); p.i++ {
		c := p.s[p.i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
	}
	return p.s[start:p.i], true
}

// params parses and discards ";key[=bare-item]" parameters (RFC 8941 §4.2.3.2).
func (p *sfParser) params() bool {
	for p.peek() == ';' {
		p.i++
		for p.peek() == ' ' {
			p.i++
		}
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek() == '=' {
			p.i++
			if _, _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// innerList parses and discards an Inner List (RFC 8941 §4.2.1.2) with its parameters; a directive
// with a list value counts as present without a value.
func (p *sfParser) innerList() bool {
	p.i++ // "("
	for !p.done() {
		for p.peek() == ' ' {
			p.i++
		}
		if p.peek() == ')' {
			p.i++
			return true
		}
		if _, _, ok := p.bareItem(); !ok || !p.params() {
			return false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return false
		}
	}
	return false
}

// bareItem parses an Integer, Decimal, String, Token, Byte Sequence or Boolean (RFC 8941 §4.2.3.1)
// and returns its text with a kind byte: '0' number, '"' string, 't' token, ':' bytes, '?' Boolean
// (text "0" or "1").
func (p *sfParser) bareItem() (string, byte, bool) {
	c := p.peek()
	switch {
	case c == '-' || c >= '0' && c <= '9':
		v, ok := p.number()
		return v, '0', ok
	case c == '"':
		v, ok := p.str()
		return v, '"', ok
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return "", 0, false
		}
		v := p.s[p.i+1 : p.i+1+end]
		for i := 0; i < len(v); i++ {
			if c := v[i]; !(isAlpha(c) || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				return "", 0, false
			}
		}
		p.i += end + 2
		return v, ':', true
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1 : p.i], '?', true
		}
		return "", 0, false
	case isAlpha(c) || c == '*':
		start := p.i
		for p.i++; !p.done() && (isTchar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/'); p.i++ {
		}
		return p.s[start:p.i], 't', true
	}
	return "", 0, false
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12 integer and 3 fractional
// digits), RFC 8941 §4.2.4.
func (p *sfParser) number() (string, bool) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits, dot := 0, -1
	for ; !p.done(); p.i++ {
		c := p.s[p.i]
		if c == '.' && dot < 0 && digits > 0 {
			if digits > 12 {
				return "", false
			}
			dot = digits
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		digits++
		if digits > 15 {
			return "", false
		}
	}
	if digits == 0 || dot == digits || dot >= 0 && digits-dot > 3 {
		return "", false
	}
	return p.s[start:p.i], true
}

// str parses a String: printable ASCII in quotes, with only \" and \\ as escapes (RFC 8941 §4.2.5).
func (p *sfParser) str() (string, bool) {
	var b strings.Builder
	for p.i++; !p.done(); p.i++ {
		c := p.s[p.i]
		switch {
		case c == '\\':
			p.i++
			if p.done() || p.s[p.i] != '"' && p.s[p.i] != '\\' {
				return "", false
			}
			b.WriteByte(p.s[p.i])
		case c == '"':
			p.i++
			return b.String(), true
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isTchar reports a token character of RFC 9110 §5.6.2.
func isTchar(c byte) bool {
	if isAlpha(c) || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
