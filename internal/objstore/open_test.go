package objstore

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestOpenRejectsBadURLs(t *testing.T) {
	tests := []struct {
		url  string
		want string // in the message, besides the list of valid URLs
	}{
		{"", "empty storage URL"},
		{"   ", "empty storage URL"},
		{"gs://bucket", `unsupported storage URL scheme "gs"`},
		{"http://minio:9000/bucket", `unsupported storage URL scheme "http"`},
		{"file://data/objects", `file URL has host "data"`},
		{"file:///data?sync=1", "takes no query parameters"},
		{"s3://", "missing bucket name"},
		{"s3://?endpoint=127.0.0.1:9000", "missing bucket name"},
		{"s3://Bad_Bucket", `bucket "Bad_Bucket"`},
		{"s3://media/some/prefix", "no path allowed"},
		{"s3://user:pw@bucket", "access_key/secret_key query parameters"},
		{"s3://media?secure=maybe", `secure="maybe": want true or false`},
		{"s3://media?create=perhaps", `create="perhaps": want true or false`},
		{"s3://media?timeout=soon", `timeout="soon"`},
		{"s3://media?timeout=-1s", `timeout="-1s"`},
		{"s3://media?attempts=0", `attempts="0"`},
		{"s3://media?attempts=many", `attempts="many"`},
		{"s3://media?endpont=x", `unknown parameter "endpont"`},
		{"s3://media?endpoint=http://127.0.0.1:9000", "without scheme"},
		{"s3://media?access_key=only", "must be given together"},
		{"s3://media?secret_key=only", "must be given together"},
		{"s3://media?a=%zz", "malformed query"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			b, err := Open(t.Context(), tc.url)
			if err == nil {
				b.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) = %q\nwant it to contain %q", tc.url, err, tc.want)
			}
			if !strings.Contains(err.Error(), "valid storage URLs: file:///") {
				t.Errorf("Open(%q) = %q\nwant it to show what a valid URL looks like", tc.url, err)
			}
		})
	}
}

func TestOpenErrorsHideSecrets(t *testing.T) {
	for _, raw := range []string{
		"s3://media\x7f?secret_key=TOPSECRET",            // url.Parse fails
		"s3://media?secret_key=TOPSECRET&access_key=%zz", // query parse fails
		"s3://media?secret_key=TOPSECRET&secure=nope",
	} {
		_, err := Open(t.Context(), raw)
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("Open(%q) err = %v; want an error without the secret", raw, err)
		}
	}
}

func TestParseS3URL(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     "envkey",
		"AWS_SECRET_ACCESS_KEY": "envsecret",
		"AWS_SESSION_TOKEN":     "envtoken",
	}
	noEnv := func(string) string { return "" }
	withEnv := func(k string) string { return env[k] }
	tests := []struct {
		name   string
		url    string
		getenv func(string) string
		want   s3Config
		str    string
	}{
		{
			name: "defaults to AWS over https with IAM", url: "s3://media", getenv: noEnv,
			want: s3Config{bucket: "media", endpoint: "s3.amazonaws.com", secure: true, timeout: 10 * time.Second,
				credSource: "IAM (none in URL or environment)"},
			str: "s3://media?endpoint=s3.amazonaws.com&secure=true",
		},
		{
			name: "environment credentials", url: "s3://media?region=eu-west-1", getenv: withEnv,
			want: s3Config{bucket: "media", endpoint: "s3.amazonaws.com", region: "eu-west-1", secure: true,
				timeout: 10 * time.Second, accessKey: "envkey", secretKey: "envsecret", sessionToken: "envtoken",
				credSource: "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
			str: "s3://media?endpoint=s3.amazonaws.com&region=eu-west-1&secure=true",
		},
		{
			name: "URL beats environment",
			url: "s3://media?endpoint=127.0.0.1:9000&access_key=k&secret_key=s3cr3t&secure=false&create=true" +
				"&timeout=2s&region=us-east-1&attempts=2",
			getenv: withEnv,
			want: s3Config{bucket: "media", endpoint: "127.0.0.1:9000", region: "us-east-1", secure: false,
				create: true, timeout: 2 * time.Second, attempts: 2, accessKey: "k", secretKey: "s3cr3t",
				credSource: "URL access_key/secret_key"},
			str: "s3://media?endpoint=127.0.0.1%3A9000&region=us-east-1&secure=false",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseS3URL(u, tc.getenv)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parseS3URL = %+v\nwant %+v", got, tc.want)
			}
			if got.String() != tc.str {
				t.Errorf("String() = %q, want %q", got.String(), tc.str)
			}
		})
	}
}

// TestOpenS3Unreachable: a wrong endpoint must fail start-up quickly and say so, never hang.
func TestOpenS3Unreachable(t *testing.T) {
	refused := func() string { // a loopback port nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	tests := []struct {
		name, endpoint, timeout string
		within                  time.Duration
	}{
		{"connection refused", refused, "2s", 5 * time.Second},
		{"connection refused, default timeout", refused, "", 14 * time.Second},
		{"server never answers", silent.Addr().String(), "1s", 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := "s3://bucket?secure=false&access_key=k&secret_key=s&region=us-east-1&endpoint=" + tc.endpoint
			if tc.timeout != "" {
				raw += "&timeout=" + tc.timeout
			}
			start := time.Now()
			b, err := Open(t.Context(), raw)
			took := time.Since(start)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			want := "cannot reach S3 endpoint " + tc.endpoint
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q\nwant it to contain %q", err, want)
			}
			if took > tc.within {
				t.Errorf("Open took %v, want under %v", took, tc.within)
			}
			t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
		})
	}
}

func TestS3ErrTranslation(t *testing.T) {
	noKey := minio.ErrorResponse{Code: minio.NoSuchKey, StatusCode: 404}
	tests := []struct {
		name                   string
		err                    error
		notFound, invalidRange bool
	}{
		{"NoSuchKey", noKey, true, false},
		{"NoSuchKey wrapped", fmt.Errorf("stat: %w", noKey), true, false},
		{"NoSuchBucket", minio.ErrorResponse{Code: minio.NoSuchBucket}, true, false},
		{"bare 404 from a HEAD", minio.ErrorResponse{StatusCode: http.StatusNotFound}, true, false},
		{"InvalidRange", minio.ErrorResponse{Code: minio.InvalidRange, StatusCode: 416}, false, true},
		{"AccessDenied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false, false},
		// Only codes count: a message that happens to say "not found" is not a not-found error.
		{"message only", errors.New("The specified key does not exist. NoSuchKey 404"), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s3Err(tc.err)
			if IsNotFound(got) != tc.notFound || IsInvalidRange(got) != tc.invalidRange {
				t.Errorf("s3Err(%v): IsNotFound %v IsInvalidRange %v, want %v %v",
					tc.err, IsNotFound(got), IsInvalidRange(got), tc.notFound, tc.invalidRange)
			}
			if !errors.Is(got, tc.err) && got != tc.err {
				t.Errorf("s3Err dropped the original error")
			}
		})
	}
	if s3Err(nil) != nil {
		t.Errorf("s3Err(nil) != nil")
	}
}

func TestContentRangeTotal(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"bytes 0-99/1234", 1234, true},
		{"bytes 5-5/6", 6, true},
		{"bytes */1000", 1000, true},
		{"bytes 0-9/*", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := contentRangeTotal(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("contentRangeTotal(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
