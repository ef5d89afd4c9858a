package transcode

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// stderrLines is how much of ffmpeg's stderr an error carries: enough for the cause, which ffmpeg
// prints last, without flooding logs or the job's error column.
const stderrLines = 12

// runFFmpeg runs ffmpeg in dir and streams its progress to report. A cancelled ctx kills ffmpeg (there is
// nothing worth finishing: the job will start over) and the returned error wraps ctx.Err().
func runFFmpeg(ctx context.Context, ffmpeg, dir string, args []string, durationSeconds float64, report ProgressFunc) error {
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	cmd.Dir = dir
	// After a kill, do not wait forever for pipes held open by a stuck child.
	cmd.WaitDelay = 10 * time.Second
	stderr := newTailBuffer(stderrLines)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("ffmpeg: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ffmpeg: start %s: %w", ffmpeg, err)
	}
	readProgress(stdout, durationSeconds, start, time.Now, report)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("ffmpeg: %w", ctx.Err())
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("ffmpeg failed (%v):\n%s", exitErr, stderr)
		}
		return fmt.Errorf("ffmpeg: %w", err)
	}
	return nil
}
