package main

import (
	"syscall"
	"testing"
	"time"
)

// TestShutdownReleasesJob: SIGTERM in the middle of a transcode stops serve within its grace period without
// failing the lecture; the job is released, and the next start finishes it.
func TestShutdownReleasesJob(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Mr. Cho")
	s := startServe(t, data, "--shutdown-grace", "1s")
	lec := uploadClip(t, s.base, token, "Long", 60)
	deadline := time.Now().Add(time.Minute)
	for lec.Status != "transcoding" {
		if lec.Status == "ready" || time.Now().After(deadline) {
			t.Fatalf("never caught the lecture transcoding: %+v", lec)
		}
		time.Sleep(50 * time.Millisecond)
		getJSON(t, s.base+"/api/v1/lectures/"+lec.ID, token, &lec)
	}

	stopped := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s of SIGTERM with a 1 s grace")
	}
	t.Logf("stopped %.1fs after SIGTERM", time.Since(stopped).Seconds())

	again := startServe(t, data)
	getJSON(t, again.base+"/api/v1/lectures/"+lec.ID, token, &lec)
	if lec.Status == "failed" || lec.Version != 0 {
		t.Fatalf("after an interrupted transcode: %+v, want it still pending", lec)
	}
	waitReady(t, again.base, token, &lec)
	if lec.Version != 1 {
		t.Fatalf("released job finished with version %d, want 1", lec.Version)
	}
}
