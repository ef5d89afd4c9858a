// Package transcode turns an uploaded lecture into a published HLS ladder.
//
// # Flow
//
// A River job ([catalog.TranscodeArgs]) reaches [Worker.Work], which marks the lecture version as
// transcoding, downloads the source from object storage into a temp dir, and calls [Transcode]:
// ffprobe, then ONE ffmpeg process that decodes the source once and encodes every rung of the ladder
// plus one shared AAC rendition as fMP4 HLS. The worker then uploads every object under
// hls/{lecture}/v{n}/ (segments and init sections, then media playlists, then master.m3u8 last) and
// only then asks the catalog to publish the version. A reader that sees the version as ready finds
// every object in place; nothing half-written is ever referenced.
//
// # Ladder
//
// The ladder is data ([Rung], [DefaultLadder]); [Transcode] drops rungs taller than the source. Key
// frames are forced every 2 s at the same timestamps in every rung and segments are 6 s, so players can
// switch renditions at any segment boundary.
//
// # Master playlist
//
// ffmpeg's own master is not used: it states nominal bit rates. Ours (written through internal/hls)
// carries BANDWIDTH measured as the RFC 8216 peak over the real segments, AVERAGE-BANDWIDTH, and CODECS
// read from each init segment's decoder configuration.
//
// # Failures
//
// A source that can never be transcoded (not media, empty, too long) fails the lecture with a
// teacher-readable reason and cancels the job ([IsRejected], [Reason]). Everything else (storage,
// ffmpeg killed, the catalog) is returned so River retries; the final attempt also fails the lecture so
// it does not stay "transcoding" forever. A stale version (the lecture was replaced or deleted) ends the
// job quietly.
//
// # Metrics
//
// [Stats] holds plain atomic counters; [Stats.Collector] exports them to Prometheus.
package transcode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/hls"
	"github.com/lectern/lectern/internal/probe"
)

// Config configures Transcode and the Worker. Zero values get the documented defaults.
type Config struct {
	// FFmpeg and FFprobe are the program paths; default "ffmpeg" and "ffprobe" from $PATH.
	FFmpeg, FFprobe string
	// TempDir is where the worker creates one directory per job (source + output, removed when the job
	// ends). It needs room for the source plus every rendition. Default os.TempDir().
	TempDir string
	// Ladder is the video renditions to encode; default DefaultLadder().
	Ladder []Rung
	// Store holds sources and published HLS objects. Required by the Worker only.
	Store Store
	// Catalog records the lecture's state. Required by the Worker only.
	Catalog Catalog
	// Logger; default discards.
	Logger *slog.Logger
	// MaxDuration rejects longer sources; default 6h.
	MaxDuration time.Duration
	// UploadConcurrency is how many objects are uploaded at once; default 8.
	UploadConcurrency int
}

func (c Config) withDefaults() Config {
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.FFprobe == "" {
		c.FFprobe = "ffprobe"
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if len(c.Ladder) == 0 {
		c.Ladder = DefaultLadder()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 6 * time.Hour
	}
	if c.UploadConcurrency <= 0 {
		c.UploadConcurrency = 8
	}
	return c
}

// Rendition describes one variant of the published master playlist.
type Rendition struct {
	// Name is the directory under v{n}/ ("720p", or "audio" for the audio rendition).
	Name string
	// Width and Height as encoded; 0 for audio.
	Width, Height int
	// Bandwidth and AverageBandwidth in bits per second, measured on the segments. For a video
	// rendition they include the audio rendition played with it, as in the master playlist.
	Bandwidth, AverageBandwidth int
	// Codecs is the RFC 6381 list of the variant (video and audio).
	Codecs string
	// FrameRate is the source frame rate, kept by the encode; 0 for audio.
	FrameRate float64
}

// Result describes a complete HLS tree written by Transcode.
type Result struct {
	// Source is what ffprobe found in the source file.
	Source probe.Result
	// DurationSeconds of the lecture.
	DurationSeconds float64
	// Renditions in master playlist order: video rungs tallest first, or the audio rendition alone for
	// an audio-only source.
	Renditions []Rendition
	// Audio is the shared audio rendition of a video source (its own bit rates, not added to video);
	// nil for video-only and audio-only sources.
	Audio *Rendition
	// Objects lists every file to publish as slash-separated paths relative to the output directory:
	// init sections and segments first, then media playlists, then "master.m3u8" last. Files that no
	// playlist references are not listed.
	Objects []string
	// Bytes is the total size of Objects.
	Bytes int64
}

// MasterName is the master playlist's file name in the output tree and in object storage.
const MasterName = "master.m3u8"

// Transcode probes src and writes a complete HLS tree into outDir (created if needed): one directory
// per rendition with index.m3u8, init.mp4 and seg_NNNNN.m4s, and master.m3u8. progress (may be nil)
// is called from the goroutine running Transcode, with a non-decreasing percentage ending at 100.
//
// Errors for which IsRejected is true mean the source can never be transcoded; Reason gives the
// teacher-readable explanation. Other errors (ffmpeg killed, ctx cancelled, disk full) may succeed on
// a retry.
func Transcode(ctx context.Context, cfg Config, src, outDir string, progress ProgressFunc) (Result, error) {
	cfg = cfg.withDefaults()
	if err := validateLadder(cfg.Ladder); err != nil {
		return Result{}, err
	}
	info, err := probe.Probe(ctx, cfg.FFprobe, src)
	if err != nil {
		return Result{}, err // invalid media stays recognisable through IsRejected
	}
	if limit := cfg.MaxDuration.Seconds(); info.DurationSeconds > limit {
		return Result{}, &rejectedError{reason: fmt.Sprintf("the recording is %s long; the limit is %s",
			roundDuration(info.DurationSeconds), roundDuration(limit))}
	}
	// ffmpeg runs inside outDir, and a name starting with "-" would read as an option.
	if src, err = filepath.Abs(src); err != nil {
		return Result{}, fmt.Errorf("transcode: %w", err)
	}
	p := plan{hasVideo: info.HasVideo, hasAudio: info.HasAudio, frameRate: info.FrameRate}
	if p.hasVideo {
		w, h := info.DisplaySize()
		p.portrait = h > w
		p.rungs = planLadder(cfg.Ladder, min(w, h))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("transcode: %w", err)
	}
	cfg.Logger.InfoContext(ctx, "transcode: encoding", "source", src, "duration", info.DurationSeconds,
		"video", info.HasVideo, "audio", info.HasAudio, "rungs", len(p.rungs))
	if err := runFFmpeg(ctx, cfg.FFmpeg, outDir, ffmpegArgs(src, p), info.DurationSeconds, progress); err != nil {
		return Result{}, err
	}
	return finish(outDir, info, p)
}

// finish checks ffmpeg's output, measures it and writes our master playlist.
func finish(outDir string, info probe.Result, p plan) (Result, error) {
	res := Result{Source: info, DurationSeconds: info.DurationSeconds}
	variants := make(map[string]variantOutput)
	var playlists []string
	for _, name := range p.variantNames() {
		v, err := finishVariant(outDir, name)
		if err != nil {
			return Result{}, err
		}
		variants[name] = v
		res.Objects = append(res.Objects, v.media...)
		playlists = append(playlists, v.playlist)
		res.Bytes += v.bytes
	}
	res.Objects = append(res.Objects, playlists...)

	master := hls.Master{IndependentSegments: true}
	var audio *variantOutput
	if p.hasAudio {
		a := variants[audioName]
		audio = &a
	}
	frameRate := math.Round(info.FrameRate*1000) / 1000
	switch {
	case p.hasVideo:
		if audio != nil {
			res.Audio = &Rendition{Name: audioName, Bandwidth: audio.peak, AverageBandwidth: audio.average, Codecs: audio.codec}
			master.Audio = []hls.AudioRendition{{GroupID: audioGroup, Name: "Audio", URI: audio.playlist, Default: true}}
		}
		for _, r := range p.rungs {
			v := variants[r.Name]
			rend := Rendition{Name: r.Name, Width: v.width, Height: v.height, Bandwidth: v.peak,
				AverageBandwidth: v.average, Codecs: v.codec, FrameRate: frameRate}
			mv := hls.Variant{URI: v.playlist, Width: v.width, Height: v.height, FrameRate: frameRate}
			if audio != nil {
				// A player downloads both at once; the sum of peaks is what it must sustain.
				rend.Bandwidth += audio.peak
				rend.AverageBandwidth += audio.average
				rend.Codecs += "," + audio.codec
				mv.Audio = audioGroup
			}
			mv.Bandwidth, mv.AverageBandwidth, mv.Codecs = rend.Bandwidth, rend.AverageBandwidth, rend.Codecs
			res.Renditions = append(res.Renditions, rend)
			master.Variants = append(master.Variants, mv)
		}
	case audio != nil:
		res.Renditions = []Rendition{{Name: audioName, Bandwidth: audio.peak, AverageBandwidth: audio.average, Codecs: audio.codec}}
		master.Variants = []hls.Variant{{URI: audio.playlist, Bandwidth: audio.peak, AverageBandwidth: audio.average, Codecs: audio.codec}}
	}
	data, err := hls.WriteMaster(master)
	if err != nil {
		return Result{}, fmt.Errorf("transcode: master playlist: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, MasterName), data, 0o644); err != nil {
		return Result{}, fmt.Errorf("transcode: %w", err)
	}
	res.Objects = append(res.Objects, MasterName)
	res.Bytes += int64(len(data))
	return res, nil
}

// rejectedError is a source that can never be transcoded, with a message for the teacher.
type rejectedError struct{ reason string }

func (e *rejectedError) Error() string { return e.reason }

// IsRejected reports whether err means the source can never be transcoded (not media, empty, too long),
// so retrying is pointless and the teacher should be told Reason(err).
func IsRejected(err error) bool {
	var r *rejectedError
	return errors.As(err, &r) || probe.IsInvalidMedia(err)
}

// Reason returns the teacher-readable explanation of a rejected source, or err.Error() otherwise.
func Reason(err error) string {
	var r *rejectedError
	if errors.As(err, &r) {
		return r.reason
	}
	return probe.Reason(err)
}

// roundDuration formats seconds for a teacher: "6h", "7h12m", "45m3s".
func roundDuration(seconds float64) string {
	s := time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
