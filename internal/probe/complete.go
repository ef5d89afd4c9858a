package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// endSlack is how far short of the declared end the last packet may stop in a complete file: the last
// frame's own duration, streams that end a little early, rounding in container durations.
const endSlack = 2.0

// CheckComplete reads the last second of the file r describes (file may be an http(s) URL) and returns
// an error for which IsInvalidMedia is true when the media data stops well before the duration its
// index promises: an MP4 written with its index first ("faststart") and then cut off probes as the full
// length, and only reading the end shows the hole. It reads one seek's worth of packets, not the file.
func CheckComplete(ctx context.Context, ffprobePath, file string, r Result) error {
	if r.DurationSeconds <= endSlack {
		return nil // too short for the check to mean anything; the transcoder still checks what it decodes
	}
	end := r.StartSeconds + r.DurationSeconds
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffprobePath, "-v", "error",
		"-read_intervals", strconv.FormatFloat(end-1, 'f', 3, 64)+"%",
		"-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", "--", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("probe: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("probe: run %s: %w", ffprobePath, err)
	}
	last, packets := -1.0, 0
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		packets++
		f := strings.Split(sc.Text(), ",")
		pts, perr := strconv.ParseFloat(f[0], 64)
		if perr != nil {
			continue // N/A timestamps
		}
		if len(f) > 1 {
			if d, derr := strconv.ParseFloat(f[1], 64); derr == nil {
				pts += d
			}
		}
		last = max(last, pts)
	}
	if packets > 0 && last < 0 && stderr.Len() == 0 && err == nil {
		// Packets without timestamps (some raw formats): nothing to judge by.
		return nil
	}
	// No packet at all after seeking to the last second means the data ends before it: a cut MP4's
	// index points past the end of the file and the demuxer silently finds nothing there.
	if last < end-endSlack || strings.Contains(stderr.String(), "partial file") || strings.Contains(stderr.String(), "ended prematurely") {
		got := max(0, last-r.StartSeconds)
		return &invalidMediaError{reason: fmt.Sprintf(reasonShortRead, FormatDuration(got), FormatDuration(r.DurationSeconds)),
			detail: oneLine(stderr.String())}
	}
	return nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}
