package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"go.yaml.in/yaml/v3"

	"github.com/lectern/lectern/internal/catalog"
)

// The tests in this file keep docs/openapi.yaml honest: they fail when a route, a JSON field or an
// error code exists in the code and not in the document, or the other way round.

const openAPIPath = "../docs/openapi.yaml"

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("%s: openapi %q, want 3.1.x", openAPIPath, v)
	}
	return doc
}

// node follows keys from m; it fails the test when one is missing or not a mapping.
func node(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	for i, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("%s: no mapping at %s", openAPIPath, strings.Join(keys[:i+1], "."))
		}
		m = next
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// sameSet reports what only the code has and what only the document has.
func sameSet(t *testing.T, what string, code, doc map[string]bool) {
	t.Helper()
	for _, k := range sortedKeys(code) {
		if !doc[k] {
			t.Errorf("%s %s is in the code but not in %s", what, k, openAPIPath)
		}
	}
	for _, k := range sortedKeys(doc) {
		if !code[k] {
			t.Errorf("%s %s is in %s but not in the code", what, k, openAPIPath)
		}
	}
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIRoutes: every API route (the gin routes under /api/ and the methods the tus endpoint
// answers) is an operation of the document, and every operation is a route.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newTusFixture(t, tusOpts{})

	code := map[string]bool{}
	engine, ok := f.svc.ginHandler().(*gin.Engine)
	if !ok {
		t.Fatal("ginHandler is not a *gin.Engine")
	}
	for _, r := range engine.Routes() {
		if strings.HasPrefix(r.Path, "/api/") {
			code[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
		}
	}
	if len(code) == 0 {
		t.Fatal("found no gin routes under /api/")
	}

	// The tus endpoint is routed by tus.route, not gin: ask it. A method it does not take answers 405;
	// any other answer (201, 200, 204, 4xx from the protocol checks) means it is routed. DELETE comes
	// last because it ends the upload the other methods are tried on.
	itemTemplate := UploadsPath + "{lecture}/{upload}"
	loc := f.create(f.tokA, f.lecture("OpenAPI"), 10)
	item := loc[strings.Index(loc, UploadsPath):]
	if strings.Count(strings.TrimPrefix(item, UploadsPath), "/") != 1 {
		t.Fatalf("upload URL %q does not have the shape %s", item, itemTemplate)
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS", "DELETE"}
	for _, p := range []struct{ url, template string }{{UploadsPath, UploadsPath}, {item, itemTemplate}} {
		for _, m := range methods {
			resp, body := f.req(m, p.url, f.tokA, map[string]string{"Tus-Resumable": "1.0.0"}, nil)
			if resp.StatusCode == http.StatusMethodNotAllowed {
				if m != "HEAD" && errCode(t, body) != "method_not_allowed" {
					t.Errorf("%s %s: 405 with %s", m, p.url, body)
				}
				continue
			}
			code[m+" "+p.template] = true
		}
	}

	documented := map[string]bool{}
	for path, item := range node(t, doc, "paths") {
		if strings.HasPrefix(path, UploadsPath) && path != UploadsPath && path != itemTemplate {
			t.Errorf("%s: path %s: tus upload URLs are %s", openAPIPath, path, itemTemplate)
		}
		ops, _ := item.(map[string]any)
		for k := range ops {
			switch k {
			case "get", "head", "post", "put", "patch", "delete", "options", "trace":
				documented[strings.ToUpper(k)+" "+path] = true
			}
		}
	}
	sameSet(t, "route", code, documented)
}

// jsonFields is the JSON object shape of a struct type: field name to whether it is always present.
func jsonFields(t *testing.T, typ reflect.Type) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for i := range typ.NumField() {
		sf := typ.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if sf.Anonymous && tag == "" {
			t.Fatalf("%s embeds %s: teach jsonFields about embedded structs", typ, sf.Type)
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		out[name] = !slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return out
}

// TestOpenAPISchemas: the document's schemas have exactly the JSON fields of the Go types the API
// encodes and decodes, and a response field is required exactly when Go always writes it.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas := node(t, doc, "components", "schemas")
	for _, c := range []struct {
		schema   string
		typ      reflect.Type
		response bool
	}{
		{"Lecture", reflect.TypeFor[lectureJSON](), true},
		{"Upload", reflect.TypeFor[uploadJSON](), true},
		{"Rendition", reflect.TypeFor[catalog.Rendition](), true},
		{"NewLecture", reflect.TypeFor[newLectureRequest](), false},
		{"LectureUpdate", reflect.TypeFor[updateLectureRequest](), false},
	} {
		t.Run(c.schema, func(t *testing.T) {
			s := node(t, schemas, c.schema)
			fields := jsonFields(t, c.typ)
			code, documented := map[string]bool{}, map[string]bool{}
			for name := range fields {
				code[name] = true
			}
			for name := range node(t, s, "properties") {
				documented[name] = true
			}
			sameSet(t, c.schema+" field", code, documented)
			if !c.response {
				return
			}
			required := map[string]bool{}
			if rs, ok := s["required"].([]any); ok {
				for _, r := range rs {
					required[r.(string)] = true
				}
			}
			for name, always := range fields {
				if always != required[name] {
					t.Errorf("%s.%s: required in %s is %v, but Go always writes it: %v", c.schema, name, openAPIPath, required[name], always)
				}
			}
		})
	}

	lecture := node(t, schemas, "Lecture", "properties")
	if ref := node(t, lecture, "upload")["$ref"]; ref != "#/components/schemas/Upload" {
		t.Errorf("Lecture.upload is %v, want the Upload schema", ref)
	}
	if ref := node(t, lecture, "renditions", "items")["$ref"]; ref != "#/components/schemas/Rendition" {
		t.Errorf("Lecture.renditions items are %v, want the Rendition schema", ref)
	}
	statuses := map[string]bool{}
	for _, s := range []catalog.Status{catalog.StatusAwaitingUpload, catalog.StatusQueued,
		catalog.StatusTranscoding, catalog.StatusReady, catalog.StatusFailed} {
		statuses[string(s)] = true
	}
	enum := map[string]bool{}
	if e, ok := node(t, lecture, "status")["enum"].([]any); ok {
		for _, v := range e {
			enum[v.(string)] = true
		}
	}
	sameSet(t, "lecture status", statuses, enum)
}

var (
	apiErrorCall = regexp.MustCompile(`apiError\(\s*(\d{3}),\s*"([a-z0-9_]+)"`)
	anyAPIError  = regexp.MustCompile(`\bapiError\(`)
	tusNewError  = regexp.MustCompile(`NewError\(\s*"([A-Za-z0-9_]+)"`)
)

// tusdErrors are tusd's errors that reach Lectern's clients, given how ingest configures tusd.
var tusdErrors = []tusd.Error{
	tusd.ErrUnsupportedVersion, tusd.ErrMaxSizeExceeded, tusd.ErrSizeExceeded, tusd.ErrInvalidContentType,
	tusd.ErrInvalidUploadLength, tusd.ErrUploadLengthAndUploadDeferLength, tusd.ErrInvalidUploadDeferLength,
	tusd.ErrConcatenationUnsupported, tusd.ErrInvalidOffset, tusd.ErrMismatchOffset, tusd.ErrNotFound,
	tusd.ErrUnexpectedEOF, tusd.ErrUploadInterrupted, tusd.ErrLockTimeout, tusd.ErrReadTimeout,
	tusd.ErrConnectionReset, tusd.ErrNotImplemented, tusd.NewError("ERR_INTERNAL_SERVER_ERROR", "boom", 500),
}

// asSent is the error code and status a client gets for tusd's plain-text error response.
func asSent(t *testing.T, status int, body string) (string, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	w := &jsonErrorWriter{ResponseWriter: rec}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	w.finish()
	return errCode(t, rec.Body.Bytes()), rec.Code
}

// TestOpenAPIErrorCodes: every error code the ingest package sends (apiError literals in its source,
// and tusd's errors as jsonErrorWriter rewrites them) is in the document's ErrorCode with the status
// it is sent with, and the document lists no other code.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]int{} // code -> x-http-status, 0 when none
	for _, v := range node(t, doc, "components", "schemas", "ErrorCode")["oneOf"].([]any) {
		alt := v.(map[string]any)
		c, ok := alt["const"].(string)
		if !ok {
			t.Fatalf("ErrorCode alternative without a const: %v", alt)
		}
		status, _ := alt["x-http-status"].(int)
		documented[c] = status
	}

	sent := map[string]map[int]bool{} // code -> statuses
	add := func(code string, status int) {
		if sent[code] == nil {
			sent[code] = map[int]bool{}
		}
		sent[code][status] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		calls := len(anyAPIError.FindAllString(src, -1)) - strings.Count(src, "func apiError(")
		found := apiErrorCall.FindAllStringSubmatch(src, -1)
		if calls != len(found) {
			t.Errorf("%s: %d apiError calls, %d with a literal status and code: this test (and the document) need both literal", name, calls, len(found))
		}
		for _, m := range found {
			status, _ := strconv.Atoi(m[1])
			add(m[2], status)
		}
		for _, m := range tusNewError.FindAllStringSubmatch(src, -1) {
			t.Errorf("%s: tusd.NewError(%q, ...): make it an apiError wrapped in tusError", name, m[1])
		}
	}
	if len(sent) < 10 {
		t.Fatalf("found only %d error codes in the source: is the pattern stale?", len(sent))
	}
	for _, e := range tusdErrors {
		add(asSent(t, e.HTTPResponse.StatusCode, e.HTTPResponse.Body))
	}
	fallback, _ := asSent(t, 500, "no code here")

	for _, c := range sortedKeys(sent) {
		status, ok := documented[c]
		if !ok {
			t.Errorf("error code %s is sent but not in %s (components.schemas.ErrorCode)", c, openAPIPath)
			continue
		}
		for s := range sent[c] {
			if s != status {
				t.Errorf("error code %s is sent with %d; %s says x-http-status %d", c, s, openAPIPath, status)
			}
		}
	}
	for _, c := range sortedKeys(documented) {
		if sent[c] == nil && c != fallback {
			t.Errorf("error code %s is in %s but never sent", c, openAPIPath)
		}
	}
	if _, ok := documented[fallback]; !ok {
		t.Errorf("the code of tusd errors without one, %s, is not in %s", fallback, openAPIPath)
	}
}

// TestOpenAPIRefs: every $ref in the document points at something in it.
func TestOpenAPIRefs(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !resolves(doc, ref) {
					t.Errorf("%s: $ref %s points at nothing", where, ref)
				}
			}
			for k, c := range v {
				walk(where+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(where+"["+strconv.Itoa(i)+"]", c)
			}
		}
	}
	walk("", doc)
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// TestOpenAPIIsJSONCompatible: every mapping key is a string (response codes quoted), as JSON and
// OpenAPI require, so tools can convert the document.
func TestOpenAPIIsJSONCompatible(t *testing.T) {
	if _, err := json.Marshal(loadOpenAPI(t)); err != nil {
		t.Fatalf("%s does not convert to JSON: %v", openAPIPath, err)
	}
}
