// Package probe asks ffprobe what a media file is and answers in Lectern's own terms.
//
// # Why a package
//
// ffprobe's JSON is large, loosely typed (numbers arrive as strings, rates as fractions, rotation in two
// places depending on the muxer) and changes between ffmpeg releases. Everything downstream (the
// transcode worker, the ingest API) sees only [Result], so a change in ffprobe's output is fixed here once.
//
// # Errors
//
// [Probe] separates two kinds of failure. A file that is not usable media (text, an empty file, a
// truncated upload, a still image, a subtitle file) yields an error for which [IsInvalidMedia] is true and
// whose message is written for the teacher who uploaded it; retrying cannot help. Anything else (ffprobe
// missing, killed, context cancelled) is an operational error that a retry may cure.
//
// # Tools
//
// [CheckTools] is meant for startup: a worker without ffmpeg should refuse to start with an instruction,
// not fail every job later.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Result is what Lectern needs to know about a source file.
type Result struct {
	// DurationSeconds is the container duration, or the longest stream when the container has none.
	DurationSeconds float64
	// FormatName is ffprobe's demuxer name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
	FormatName string
	// HasVideo is false for audio files, including audio files that carry cover art.
	HasVideo bool
	HasAudio bool
	// Width and Height are the coded size of the first video stream, before Rotation is applied.
	// Use DisplaySize for what a viewer sees.
	Width, Height int
	// FrameRate is the average frame rate of the first video stream (frames per second).
	FrameRate  float64
	VideoCodec string
	AudioCodec string
	// AudioChannels of the first audio stream.
	AudioChannels int
	// Rotation of the first video stream in degrees as ffprobe reports it (display matrix, or the
	// legacy "rotate" tag), normalised to 0, 90, 180 or 270. ffmpeg applies it when decoding
	// (autorotate), so the transcoded output is upright; 90 and 270 swap width and height.
	Rotation int
}

// DisplaySize returns the picture size after rotation: what ffmpeg's autorotate produces.
func (r Result) DisplaySize() (width, height int) {
	if r.Rotation == 90 || r.Rotation == 270 {
		return r.Height, r.Width
	}
	return r.Width, r.Height
}

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
)

// ffprobeOutput mirrors the part of `ffprobe -print_format json` we read. Numbers that ffprobe prints
// as strings stay strings here and are parsed leniently: "N/A" is common and must not fail the probe.
type ffprobeOutput struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		AvgFrameRate string `json:"avg_frame_rate"`
		RFrameRate   string `json:"r_frame_rate"`
		Channels     int    `json:"channels"`
		Duration     string `json:"duration"`
		Disposition  struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
		Tags struct {
			Rotate string `json:"rotate"`
		} `json:"tags"`
		SideDataList []sideData `json:"side_data_list"`
	} `json:"streams"`
}

// sideData is one entry of a stream's side_data_list; only the display matrix carries a rotation.
type sideData struct {
	Rotation *float64 `json:"rotation"`
}

// Probe runs ffprobe on file. Errors for which IsInvalidMedia is true mean the file is not usable
// media; other errors are operational (ffprobe missing, ctx cancelled).
func Probe(ctx context.Context, ffprobePath, file string) (Result, error) {
	st, err := os.Stat(file)
	if err != nil {
		return Result{}, fmt.Errorf("probe: %w", err)
	}
	if st.Size() == 0 {
		return Result{}, &invalidMediaError{reason: reasonEmpty}
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffprobePath,
		"-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", file)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("probe: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		// ffprobe exits 1 for anything it cannot demux; that is the file's fault, not ours.
		return Result{}, &invalidMediaError{reason: reasonUnreadable, detail: lastLine(stderr.String())}
	}
	if runErr != nil {
		return Result{}, fmt.Errorf("probe: run %s: %w", ffprobePath, runErr)
	}
	return parse(stdout.Bytes())
}

// parse turns ffprobe's JSON into a Result and applies the usable-media rules.
func parse(data []byte) (Result, error) {
	var out ffprobeOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return Result{}, fmt.Errorf("probe: decode ffprobe output: %w", err)
	}
	r := Result{FormatName: out.Format.FormatName}
	r.DurationSeconds = parseFloat(out.Format.Duration)
	longestStream := 0.0
	for _, s := range out.Streams {
		switch s.CodecType {
		case "video":
			// Cover art in an MP3 or M4A is a one-frame "video" stream; it is not a video.
			if s.Disposition.AttachedPic == 1 || r.HasVideo {
				continue
			}
			r.HasVideo = true
			r.VideoCodec = s.CodecName
			r.Width, r.Height = s.Width, s.Height
			r.FrameRate = parseRate(s.AvgFrameRate)
			if r.FrameRate == 0 {
				r.FrameRate = parseRate(s.RFrameRate)
			}
			r.Rotation = rotation(s.Tags.Rotate, s.SideDataList)
		case "audio":
			if r.HasAudio {
				continue
			}
			r.HasAudio = true
			r.AudioCodec = s.CodecName
			r.AudioChannels = s.Channels
		default:
			continue
		}
		longestStream = math.Max(longestStream, parseFloat(s.Duration))
	}
	// Some containers (raw streams, some MKVs) only know per-stream durations.
	if r.DurationSeconds == 0 {
		r.DurationSeconds = longestStream
	}
	if !r.HasVideo && !r.HasAudio {
		return r, &invalidMediaError{reason: reasonNoStreams, detail: "format " + r.FormatName}
	}
	if !(r.DurationSeconds > 0) || math.IsInf(r.DurationSeconds, 0) {
		return r, &invalidMediaError{reason: reasonNoDuration, detail: "format " + r.FormatName}
	}
	return r, nil
}

// rotation prefers the display matrix (ffmpeg >= 5 reports it there) over the legacy "rotate" tag.
func rotation(tag string, side []sideData) int {
	deg := 0.0
	found := false
	for _, sd := range side {
		if sd.Rotation != nil {
			deg, found = *sd.Rotation, true
			break
		}
	}
	if !found && tag != "" {
		deg = parseFloat(tag)
	}
	d := int(math.Round(deg/90)) * 90 % 360
	if d < 0 {
		d += 360
	}
	return d
}

func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) {
		return 0
	}
	return f
}

// parseRate parses ffprobe's "30000/1001"; "0/0" and garbage give 0.
func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return parseFloat(s)
	}
	n, d := parseFloat(num), parseFloat(den)
	if d == 0 {
		return 0
	}
	return n / d
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
