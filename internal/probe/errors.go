package probe

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// invalidMediaError marks a file that is not usable media. Its message is shown to teachers.
type invalidMediaError struct {
	reason string
	detail string // ffprobe's own words, for logs
}

func (e *invalidMediaError) Error() string {
	if e.detail == "" {
		return e.reason
	}
	return e.reason + ": " + e.detail
}

// IsInvalidMedia reports whether err (or any error it wraps) says the file is not usable media: the
// job should fail for good and the teacher should be told, rather than retried.
func IsInvalidMedia(err error) bool {
	var e *invalidMediaError
	return errors.As(err, &e)
}

// Reason returns the teacher-readable part of an invalid-media error (without ffprobe's detail), or
// err.Error() for any other error.
func Reason(err error) string {
	var e *invalidMediaError
	if errors.As(err, &e) {
		return e.reason
	}
	return err.Error()
}

// The messages teachers see. Kept together so the wording stays consistent.
const (
	reasonUnreadable = "not a video or audio file (ffprobe could not read it)"
	reasonEmpty      = "the file is empty"
	reasonNoStreams  = "no video or audio stream"
	reasonNoDuration = "zero duration / could not determine duration"
	reasonTruncated  = "the file is incomplete (the upload was probably cut off); please upload it again"
	// reasonShortRead is filled in by Truncated with what was read and what the index promised.
	reasonShortRead = "the file is incomplete: only %s of %s could be read; please upload it again"
)

// Truncated returns the error for a source that probed fine but decoded short: an MP4 whose index is
// at the front (faststart) but whose media data was cut off promises the full duration to ffprobe,
// and only decoding finds the end missing. The transcoder calls it when ffmpeg's output lasts
// gotSeconds of the wantSeconds that Probe reported. IsInvalidMedia is true for the result, and Reason
// reads "the file is incomplete: only 1m2s of 10m could be read; please upload it again".
func Truncated(gotSeconds, wantSeconds float64) error {
	return &invalidMediaError{reason: fmt.Sprintf(reasonShortRead, FormatDuration(gotSeconds), FormatDuration(wantSeconds))}
}

// truncationSigns are what ffmpeg's demuxers print when a file ends before its header or index does.
// A file that ends there was almost always cut off in transit; "not a video file" would mislead the
// teacher, who did upload a video.
var truncationSigns = []string{
	"moov atom not found",    // MP4/MOV written without faststart: the index is at the end, cut off
	"File ended prematurely", // Matroska/WebM cut inside its header
}

// truncated reports whether ffprobe's stderr shows that the file was cut off.
func truncated(stderr string) bool {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		l = strings.TrimSpace(l)
		for _, sign := range truncationSigns {
			if strings.Contains(l, sign) {
				return true
			}
		}
		// The MP4 demuxer recognised the file but could not read its index (moov cut short).
		if strings.HasPrefix(l, "[mov,") && strings.HasSuffix(l, "error reading header") {
			return true
		}
	}
	// avformat_open_input's own error: the file ended (AVERROR_EOF) before the header was complete.
	return strings.HasSuffix(strings.TrimSpace(lines[len(lines)-1]), ": End of file")
}

// oneLine joins ffprobe's stderr into one line for an error's detail, capped so a flood of
// per-packet warnings cannot bloat a log line.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	s = strings.Join(lines, "; ")
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "..."
	}
	return s
}

// FormatDuration formats seconds for a teacher: "6h", "7h12m", "45m3s", "10m".
func FormatDuration(seconds float64) string {
	s := time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
