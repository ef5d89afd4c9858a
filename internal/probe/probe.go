// Package probe asks ffprobe what a media file is and answers in Lectern's own terms.
//
// # Why a package
//
// ffprobe's JSON is large, loosely typed (numbers arrive as strings, rates as fractions, rotation in two
// places depending on the muxer) and changes between ffmpeg releases. Everything downstream (the
// transcode worker, the ingest API) sees only [Result], so a change in ffprobe's output is fixed here once.
//
// # What it answers
//
// [Result] says what the transcoder must decide on: which streams there are (video and audio, video
// only, or audio only, cover art not counting as video); the picture's coded size and
// [Result.Rotation] ([Result.DisplaySize] gives portrait or landscape as viewers see it); pixel format
// and bit depth (players want 8-bit yuv420p; anything else must be converted); whether the source is
// interlaced or has a variable frame rate, and [Result.OutputFrameRate] for the constant rate to encode
// at; and the audio's channels, layout and sample rate (5.1 must be downmixed).
//
// # Errors
//
// [Probe] separates two kinds of failure. A file that is not usable media (text, an empty file, a
// truncated upload, a still image, a subtitle file) yields an error for which [IsInvalidMedia] is true and
// whose message is written for the teacher who uploaded it; retrying cannot help. Anything else (ffprobe
// missing, killed, context cancelled) is an operational error that a retry may cure.
//
// An upload that was cut off gets its own reason, asking the teacher to upload again. [Probe] sees it
// when the container index is missing (an MP4 whose moov atom was at the end). An MP4 with its index
// at the front (faststart) cut in its media data still probes with its full duration; only decoding
// finds the end missing, so the transcoder compares what ffmpeg produced with
// [Result.DurationSeconds] and reports the shortfall with [Truncated].
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
	// StartSeconds is the container's start time (timestamps of the first packets); usually 0.
	StartSeconds float64
	// FormatName is ffprobe's demuxer name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
	FormatName string
	// HasVideo is false for audio files, including audio files that carry cover art.
	HasVideo bool
	HasAudio bool
	// Width and Height are the coded size of the first video stream, before Rotation is applied.
	// Use DisplaySize for what a viewer sees.
	Width, Height int
	// FrameRate is the average frame rate of the first video stream (frames per second), or
	// NominalFrameRate when the container does not know the average.
	FrameRate float64
	// NominalFrameRate is ffprobe's r_frame_rate: the lowest rate that represents every timestamp
	// seen at the start of the stream. For constant-rate video it equals the average.
	NominalFrameRate float64
	// VariableFrameRate is a best guess: the average and nominal rates differ by more than 2%, or the
	// only "rate" is a timestamp clock (1000/1, 90000/1). Jitter that averages out to the nominal rate
	// goes unnoticed, so encode at OutputFrameRate whatever it says.
	VariableFrameRate bool
	// Interlaced is true when the first video stream is coded as fields (field_order tt, bb, tb or bt);
	// it must be deinterlaced for the web.
	Interlaced bool
	// PixelFormat is ffprobe's pix_fmt of the first video stream: "yuv420p" is what players need;
	// "yuvj420p" (full range, from webcams), "yuv422p", "yuv444p10le" and others must be converted.
	PixelFormat string
	// BitDepth per sample of the first video stream: 8, 10 or 12 (0 without video). Taken from
	// bits_per_raw_sample, or read off PixelFormat ("yuv420p10le" is 10) when the decoder does not say.
	BitDepth   int
	VideoCodec string
	AudioCodec string
	// AudioChannels of the first audio stream. Use it, not the layout, to decide on a downmix: more
	// than 2 channels need one.
	AudioChannels int
	// AudioChannelLayout of the first audio stream as ffmpeg names it: "mono", "stereo", "5.1",
	// "5.1(side)". Empty when the file does not say (a plain WAV).
	AudioChannelLayout string
	// AudioSampleRate of the first audio stream in Hz (44100, 48000); 0 if unknown.
	AudioSampleRate int
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

// ffprobeOutput mirrors the part of `ffprobe -print_format json` we read. Numbers that ffprobe prints
// as strings stay strings here and are parsed leniently: "N/A" is common and must not fail the probe.
type ffprobeOutput struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		StartTime  string `json:"start_time"`
	} `json:"format"`
	Streams []struct {
		CodecType        string `json:"codec_type"`
		CodecName        string `json:"codec_name"`
		Width            int    `json:"width"`
		Height           int    `json:"height"`
		PixFmt           string `json:"pix_fmt"`
		BitsPerRawSample string `json:"bits_per_raw_sample"`
		FieldOrder       string `json:"field_order"`
		AvgFrameRate     string `json:"avg_frame_rate"`
		RFrameRate       string `json:"r_frame_rate"`
		Channels         int    `json:"channels"`
		ChannelLayout    string `json:"channel_layout"`
		SampleRate       string `json:"sample_rate"`
		Duration         string `json:"duration"`
		Disposition      struct {
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
//
// file may also be an http(s) URL (a presigned object URL): ffprobe reads what it needs with range
// requests. The caller then checks for an empty object itself.
func Probe(ctx context.Context, ffprobePath, file string) (Result, error) {
	if !isURL(file) {
		st, err := os.Stat(file)
		if err != nil {
			return Result{}, fmt.Errorf("probe: %w", err)
		}
		if st.Size() == 0 {
			return Result{}, &invalidMediaError{reason: reasonEmpty}
		}
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
		if truncated(stderr.String()) {
			return Result{}, &invalidMediaError{reason: reasonTruncated, detail: oneLine(stderr.String())}
		}
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
	r.StartSeconds = parseFloat(out.Format.StartTime)
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
			avg, nominal := parseRate(s.AvgFrameRate), parseRate(s.RFrameRate)
			r.FrameRate, r.NominalFrameRate = avg, nominal
			if r.FrameRate == 0 {
				r.FrameRate = nominal
			}
			r.VariableFrameRate = variableFrameRate(avg, nominal)
			r.Rotation = rotation(s.Tags.Rotate, s.SideDataList)
			r.PixelFormat = s.PixFmt
			r.BitDepth = bitDepth(s.BitsPerRawSample, s.PixFmt)
			switch s.FieldOrder {
			case "tt", "bb", "tb", "bt":
				r.Interlaced = true
			}
		case "audio":
			if r.HasAudio {
				continue
			}
			r.HasAudio = true
			r.AudioCodec = s.CodecName
			r.AudioChannels = s.Channels
			r.AudioChannelLayout = s.ChannelLayout
			r.AudioSampleRate = int(parseFloat(s.SampleRate))
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

// bitDepth prefers what the decoder reports and falls back to the pixel format's name: ffmpeg names
// high-depth formats by their depth and byte order ("yuv420p10le", "p010le", "gray12be").
func bitDepth(bitsPerRawSample, pixFmt string) int {
	if n, err := strconv.Atoi(strings.TrimSpace(bitsPerRawSample)); err == nil && n > 0 {
		return n
	}
	name := strings.TrimSuffix(strings.TrimSuffix(pixFmt, "le"), "be")
	if name == pixFmt {
		return 8 // no byte order: 8 bits per sample ("yuv420p", "nv12", "rgb24")
	}
	digits := len(name)
	for digits > 0 && name[digits-1] >= '0' && name[digits-1] <= '9' {
		digits--
	}
	switch n, _ := strconv.Atoi(name[digits:]); n {
	case 9, 10, 12, 14, 16:
		return n
	case 48, 64: // rgb48le, rgba64le: the number counts all components
		return 16
	}
	return 8 // packed 8-bit-or-less layouts such as rgb565le
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
