package testenv_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/testenv"
)

// TestMinIOStopStart: a private MinIO keeps its address and its objects across Stop and Start, and is
// unreachable in between.
func TestMinIOStopStart(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	b, err := objstore.Open(ctx, m.URL(testenv.RandomName("lectern-")))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.PutBytes(ctx, "k", []byte("kept"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	m.Stop()
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.Ping(pctx)
	cancel()
	if err == nil {
		t.Fatal("Ping succeeded with the server stopped")
	}
	t.Logf("Ping failed after %s: %v", time.Since(start).Round(time.Millisecond), err)

	m.Start()
	rc, _, err := b.Get(ctx, "k")
	if err != nil {
		t.Fatalf("Get after restart with the same client: %v", err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != "kept" {
		t.Fatalf("object after restart: %q", got)
	}
}
