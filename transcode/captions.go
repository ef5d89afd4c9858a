package transcode

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"unicode/utf8"

	"github.com/lectern/lectern/internal/hls"
)

// Captions layout in the output tree.
const (
	subsDir      = "subs"
	captionsFile = "captions.vtt"
	subsGroup    = "subs"
	// MaxCaptionsBytes bounds an uploaded captions file: six hours of dense captions are about 1 MiB.
	MaxCaptionsBytes = 8 << 20
)

// CheckCaptions reports whether data is a WebVTT file Lectern can publish, with a message for the
// teacher when it is not. Ingest calls it at upload; the worker again before encoding.
func CheckCaptions(data []byte) error {
	if len(data) > MaxCaptionsBytes {
		return &rejectedError{reason: fmt.Sprintf("the captions file is %d bytes; the limit is %d", len(data), MaxCaptionsBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return &rejectedError{reason: "the captions file is not UTF-8 text; save it as UTF-8 WebVTT (.vtt)"}
	}
	// WebVTT: the file starts with "WEBVTT", then a space, tab or line break, or nothing.
	rest, ok := bytes.CutPrefix(data, []byte("WEBVTT"))
	if !ok || (len(rest) > 0 && !bytes.ContainsAny(rest[:1], " \t\r\n")) {
		return &rejectedError{reason: "the captions file is not WebVTT: it must start with the line \"WEBVTT\" (SubRip .srt files need converting)"}
	}
	return nil
}

func checkCaptions(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("transcode: captions: %w", err)
	}
	return CheckCaptions(data)
}

// writeCaptions copies the captions into subs/ (without a byte-order mark) and writes the one-segment
// playlist that makes them a SUBTITLES rendition. It returns the playlist's path, the other objects and
// the bytes written.
func writeCaptions(outDir, file string, duration float64) (string, []string, int64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil, 0, fmt.Errorf("transcode: captions: %w", err)
	}
	if err := CheckCaptions(data); err != nil {
		return "", nil, 0, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	playlist, err := hls.WriteSingleFileMedia(captionsFile, duration)
	if err != nil {
		return "", nil, 0, fmt.Errorf("transcode: captions: %w", err)
	}
	dir := filepath.Join(outDir, subsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, 0, fmt.Errorf("transcode: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, captionsFile), data, 0o644); err != nil {
		return "", nil, 0, fmt.Errorf("transcode: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.m3u8"), playlist, 0o644); err != nil {
		return "", nil, 0, fmt.Errorf("transcode: %w", err)
	}
	return path.Join(subsDir, "index.m3u8"), []string{path.Join(subsDir, captionsFile)}, int64(len(data) + len(playlist)), nil
}
