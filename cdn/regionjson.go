package cdn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The region map is edited by hand, so it is read more strictly than encoding/json reads into structs
// (which keeps the last of two equal keys, ignores unknown fields and names Go types in its errors):
// the file is first read into a tree whose objects keep their keys in order and refuse a key given
// twice, then walked field by field, each error naming the path of the value at fault.

// jsonObject is a JSON object with its keys in the file's order.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// maxJSONDepth bounds nesting; the region map needs four levels.
const maxJSONDepth = 32

// readStrictJSON parses data as one JSON value into nil, bool, json.Number, string, []any and
// *jsonObject.
func readStrictJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSONValue(dec, data, "", 0)
	if err != nil {
		return nil, err
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		rest := data[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		return nil, fmt.Errorf("%s: more text after the end of the top-level object", position(data, end))
	}
	return v, nil
}

func readJSONValue(dec *json.Decoder, data []byte, path string, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("%s: nested more than %d levels deep", showPath(path), maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonSyntaxError(data, dec, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := &jsonObject{vals: map[string]any{}}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, jsonSyntaxError(data, dec, err)
			}
			key := tok.(string) // the decoder accepts nothing else before a colon
			if _, dup := obj.vals[key]; dup {
				return nil, fmt.Errorf("%s: %q is given twice in this object (%s)", showPath(path), key, position(data, dec.InputOffset()))
			}
			v, err := readJSONValue(dec, data, joinKey(path, key), depth+1)
			if err != nil {
				return nil, err
			}
			obj.keys = append(obj.keys, key)
			obj.vals[key] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonSyntaxError(data, dec, err)
		}
		return obj, nil
	case '[':
		list := []any{}
		for dec.More() {
			v, err := readJSONValue(dec, data, fmt.Sprintf("%s[%d]", path, len(list)), depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonSyntaxError(data, dec, err)
		}
		return list, nil
	}
	return nil, fmt.Errorf("%s: unexpected %q", position(data, dec.InputOffset()), d)
}

func jsonSyntaxError(data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%s: %s", position(data, syntaxOffset(data, syn)), strings.TrimPrefix(syn.Error(), "json: "))
	case err == io.EOF && len(bytes.TrimSpace(data)) == 0:
		return errors.New("the file is empty")
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the file ends in the middle of a value: is a closing } or ] missing?")
	}
	return fmt.Errorf("%s: %v", position(data, dec.InputOffset()), err)
}

var badChar = regexp.MustCompile(`^invalid character '(.+?)'`)

// syntaxOffset returns where a syntax error is: encoding/json's Offset points at or before the token
// it was reading, so the character its message names is looked for from there.
func syntaxOffset(data []byte, syn *json.SyntaxError) int64 {
	m := badChar.FindStringSubmatch(syn.Error())
	if m == nil || syn.Offset > int64(len(data)) {
		return syn.Offset
	}
	c := m[1]
	switch c {
	case `\'`:
		c = "'"
	case `"`:
	default:
		if u, err := strconv.Unquote(`"` + c + `"`); err == nil {
			c = u
		}
	}
	if i := bytes.Index(data[syn.Offset:], []byte(c)); i >= 0 {
		return syn.Offset + int64(i)
	}
	return syn.Offset
}

// position turns a byte offset into the "line L, column C" editors show.
func position(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey extends a path such as regions.seoul.edges[0] by one object key.
func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func showPath(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// problems collects what is wrong with a file, so that one attempt shows the editor every mistake.
type problems struct{ errs []error }

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", showPath(path), fmt.Sprintf(format, args...)))
}

func (p *problems) err() error {
	const most = 20
	if len(p.errs) > most {
		n := len(p.errs)
		p.errs = append(p.errs[:most], fmt.Errorf("and %d more", n-most))
	}
	return errors.Join(p.errs...)
}

// describe names a JSON value's type for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", v)
	case json.Number:
		return "the number " + v.String()
	case string:
		return fmt.Sprintf("the string %q", v)
	case []any:
		return "a list"
	case *jsonObject:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// object returns v as an object whose fields are all among known (any other is reported), or nil
// when v is not an object. "comment" is always allowed, for notes in a file that has no comments.
func (p *problems) object(path string, v any, example string, known ...string) *jsonObject {
	obj, ok := v.(*jsonObject)
	if !ok {
		p.add(path, "want an object like %s, got %s", example, describe(v))
		return nil
	}
	for _, k := range obj.keys {
		switch {
		case k == "comment":
			if _, ok := obj.vals[k].(string); !ok {
				p.add(joinKey(path, k), "want a string (a note for readers), got %s", describe(obj.vals[k]))
			}
		case !slices.Contains(known, k):
			p.add(path, "unknown field %q (the fields are %s and comment)", k, strings.Join(known, ", "))
		}
	}
	return obj
}

func (p *problems) list(path string, v any) []any {
	l, ok := v.([]any)
	if !ok {
		p.add(path, "want a list [...], got %s", describe(v))
	}
	return l
}

func (p *problems) str(path string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		p.add(path, "want a string, got %s", describe(v))
	}
	return s, ok
}

func (p *problems) number(path string, v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		p.add(path, "want a number, got %s", describe(v))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		p.add(path, "%s is out of range", n)
		return 0, false
	}
	return f, true
}

func (p *problems) boolean(path string, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		p.add(path, "want true or false, got %s", describe(v))
	}
	return b, ok
}
