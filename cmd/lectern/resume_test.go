package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/testenv"
	"github.com/lectern/lectern/internal/tusclient"
)

// TestUploadResumesAcrossRestart is the teacher on a bad day: the upload stops at 50%, the server is
// killed (SIGKILL, no goodbye) and started again, and the upload goes on from the offset the server
// stored, sending only the rest. The source that reaches storage is byte-identical. On file storage and
// on MinIO (tusd's s3store writing straight to the bucket).
func TestUploadResumesAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern")
	}
	src := filepath.Join(t.TempDir(), "lecture.mp4")
	// ~15 MB of real media (noise keeps it from compressing), so the upload spans several PATCHes and s3store parts (5 MiB minimum).
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4,noise=alls=30:allf=t",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "16",
		"-c:a", "aac", "-movflags", "+faststart", src).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 8<<20 {
		t.Fatalf("test clip is only %d bytes; want > 8 MiB", len(data))
	}
	for _, store := range []string{"file", "minio"} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			storeURL := "file://" + filepath.Join(dir, "objects")
			if store == "minio" {
				storeURL = testenv.S3URL(t)
			}
			args := []string{"--storage", storeURL}
			token := addTeacher(t, sqliteDB(dir), "Ms. Han")
			s := startServe(t, dir, args...)
			id := createLecture(t, s.base, token, "Optics, part 1")

			hdr := http.Header{"Authorization": {"Bearer " + token}}
			c := tusclient.New(hdr)
			c.ChunkSize = 1 << 20
			c.StopAfter = int64(len(data) / 2)
			ctx := context.Background()
			uploadURL, err := c.Create(ctx, s.base+"/api/v1/uploads/", int64(len(data)), map[string]string{"lecture": id, "filename": "lecture.mp4"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Upload(ctx, uploadURL, bytes.NewReader(data), 0, int64(len(data)), nil); !errors.Is(err, tusclient.ErrStopped) {
				t.Fatalf("first run: %v, want it stopped at 50%%", err)
			}

			// Crash the server and start it again on the same data and storage.
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.exited
			s2 := startServe(t, dir, args...)
			path := uploadURL[strings.Index(uploadURL, "/api/v1/uploads/"):]
			resumeURL := s2.base + path

			c.StopAfter = 0
			off, size, err := c.Offset(ctx, resumeURL)
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(data)) || off <= 0 || off > int64(len(data)/2) {
				t.Fatalf("after the restart the server has offset %d of %d; want more than 0 and at most the %d sent", off, size, len(data)/2)
			}
			t.Logf("%s: resuming at %d of %d bytes (%.0f%%)", store, off, size, 100*float64(off)/float64(size))
			var read atomic.Int64
			end, err := c.Upload(ctx, resumeURL, countingReaderAt{bytes.NewReader(data), &read}, off, int64(len(data)), nil)
			if err != nil || end != int64(len(data)) {
				t.Fatalf("resume: offset %d, %v", end, err)
			}
			if sent := read.Load(); sent != int64(len(data))-off {
				t.Fatalf("resume sent %d bytes; want exactly the %d after the stored offset", sent, int64(len(data))-off)
			}

			var l apiLecture
			if code := getJSON(t, s2.base+"/api/v1/lectures/"+id, token, &l); code != 200 || (l.Status != "queued" && l.Status != "transcoding" && l.Status != "ready") {
				t.Fatalf("lecture after upload: %d status %q, want it accepted (queued or later)", code, l.Status)
			}
			bucket, err := objstore.Open(ctx, storeURL)
			if err != nil {
				t.Fatal(err)
			}
			defer bucket.Close()
			objs, err := bucket.List(ctx, "sources/"+id+"/")
			if err != nil || len(objs) != 1 {
				t.Fatalf("sources of the lecture: %+v %v; want exactly one object", objs, err)
			}
			rc, _, err := bucket.Get(ctx, objs[0].Key)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("the stored source is not byte-identical to the file")
			}
		})
	}
}

// countingReaderAt counts the bytes an upload reads from the file.
type countingReaderAt struct {
	r io.ReaderAt
	n *atomic.Int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// createLecture makes an empty lecture through the API and returns its id.
func createLecture(t *testing.T, base, token, title string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"title": title, "course": "Physics"})
	req, _ := http.NewRequest("POST", base+"/api/v1/lectures", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l apiLecture
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 || json.Unmarshal(b, &l) != nil || l.ID == "" {
		t.Fatalf("create lecture: %d %s", resp.StatusCode, b)
	}
	return l.ID
}
