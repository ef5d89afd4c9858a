package probe

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// CheckTools verifies that ffmpeg and ffprobe can be found and run. Meant for startup, so that a worker
// without them refuses to start with an instruction instead of failing every job.
// Both problems, when both tools are missing, are reported on one line.
func CheckTools(ffmpegPath, ffprobePath string) error {
	var msgs []string
	for _, err := range []error{checkTool(ffmpegPath, "ffmpeg", "--ffmpeg"), CheckFFprobe(ffprobePath)} {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// CheckFFprobe verifies ffprobe alone, for roles that validate media but never transcode (ingest).
func CheckFFprobe(ffprobePath string) error { return checkTool(ffprobePath, "ffprobe", "--ffprobe") }

func checkTool(path, name, flag string) error {
	if path == "" {
		path = name
	}
	resolved, err := exec.LookPath(path)
	if err != nil {
		return fmt.Errorf("%s not found: install it (apt-get install ffmpeg) or set %s", name, flag)
	}
	// A broken install (missing shared library) is found by LookPath but cannot run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, resolved, "-hide_banner", "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s (%s) does not run: %v: %s", name, resolved, err, strings.TrimSpace(lastLine(string(out))))
	}
	return nil
}
