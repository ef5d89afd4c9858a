package transcode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
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
	stopFavouring := favourMainThread(cmd.Process.Pid)
	readProgress(stdout, durationSeconds, start, time.Now, report)
	// stdout is closed: ffmpeg is exiting. Stop before Wait reaps it, so its pid cannot be reused by then.
	stopFavouring()
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

// The ladder's scalers (Config.Scaler).
const (
	// ScalerZscale is libzimg through ffmpeg's zscale filter: on lecture content it scaled the 1080p
	// ladder's rungs for less CPU than swscale's bicubic, to the same picture.
	ScalerZscale = "zscale"
	// ScalerSwscale is ffmpeg's built-in scale filter, in every ffmpeg build.
	ScalerSwscale = "swscale"
)

// DetectScaler returns ScalerZscale when ffmpeg has the zscale filter (built with libzimg, as Debian's
// and most static builds are), else ScalerSwscale.
func DetectScaler(ctx context.Context, ffmpeg string) (string, error) {
	out, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-filters").Output()
	if err != nil {
		return "", fmt.Errorf("transcode: list %s filters: %w", ffmpeg, err)
	}
	// Lines look like " .SC zscale            V->V       Apply resizing, ...".
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[1] == "zscale" {
			return ScalerZscale, nil
		}
	}
	return ScalerSwscale, nil
}
