package objstore_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/objstore/objstoretest"
	"github.com/lectern/lectern/internal/testenv"
)

func TestS3Conformance(t *testing.T) {
	objstoretest.RunConformance(t, func(t *testing.T) *objstore.Bucket {
		b, err := objstore.Open(t.Context(), testenv.S3URL(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	})
}

// s3URL returns the test server's URL for a fresh bucket with one query parameter changed.
func s3URL(t *testing.T, param, value string) string {
	t.Helper()
	u, err := url.Parse(testenv.S3URL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if value == "" {
		q.Del(param)
	} else {
		q.Set(param, value)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestS3MissingBucket(t *testing.T) {
	raw := s3URL(t, "create", "")
	u, _ := url.Parse(raw)
	_, err := objstore.Open(t.Context(), raw)
	want := `bucket "` + u.Host + `" does not exist at endpoint ` + u.Query().Get("endpoint") + " (add create=true"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open without create: err = %v\nwant it to contain %q", err, want)
	}
	// The same URL opens once the bucket exists.
	b, err := objstore.Open(t.Context(), raw+"&create=true")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestS3WrongCredentials(t *testing.T) {
	_, err := objstore.Open(t.Context(), s3URL(t, "secret_key", "not-the-secret"))
	if err == nil || !strings.Contains(err.Error(), "refused access") ||
		!strings.Contains(err.Error(), "URL access_key/secret_key") {
		t.Fatalf("Open with a wrong secret: err = %v, want a message about refused credentials", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestS3StringHidesCredentials(t *testing.T) {
	raw := testenv.S3URL(t)
	u, _ := url.Parse(raw)
	b, err := objstore.Open(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := b.String()
	for _, secret := range []string{u.Query().Get("secret_key"), "secret_key", "access_key"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() = %q shows %q", s, secret)
		}
	}
	if !strings.HasPrefix(s, "s3://"+u.Host+"?") {
		t.Errorf("String() = %q, want the bucket", s)
	}
}
