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
// Profiles and their ladders are data ([Profile], [Rung], [DefaultProfiles]); [Transcode] drops rungs
// taller than the source and scales each remaining rung from the one above it. Key frames are forced
// every 2 s at the same timestamps in every rung and segments are 6 s, so players can switch renditions
// at any segment boundary.
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
	// Profiles is the table of encoding profiles; default DefaultProfiles(). It must have a "lecture"
	// profile, used when a lecture names none.
	Profiles []Profile
	// NoChapters turns slide-chapter detection (chapters.vtt and thumbnails) off.
	NoChapters bool
	// Scaler resizes the ladder's rungs: ScalerZscale (libzimg) or ScalerSwscale (ffmpeg's own, always
	// there). "" picks zscale when this ffmpeg has it (see DetectScaler).
	Scaler string
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
	// LeaseTTL is how long a worker's silence (no heartbeat) must last before another worker takes over
	// its job; the worker renews its lease four times per LeaseTTL. Default 2m.
	LeaseTTL time.Duration
	// TimeoutBase + TimeoutPerSecond x the lecture's duration bound one job attempt; defaults 15m and 3
	// (a two-core machine encodes lecture content at 2.5-4x realtime, so 3x leaves room for a busy one).
	// A job whose duration is unknown gets the bound of a MaxDuration lecture.
	TimeoutBase      time.Duration
	TimeoutPerSecond float64
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
	if len(c.Profiles) == 0 {
		c.Profiles = DefaultProfiles()
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
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 2 * time.Minute
	}
	if c.TimeoutBase <= 0 {
		c.TimeoutBase = 15 * time.Minute
	}
	if c.TimeoutPerSecond <= 0 {
		c.TimeoutPerSecond = 3
	}
	return c
}

// Input is one lecture to transcode.
type Input struct {
	// Source is the media file.
	Source string
	// Profile names the encoding profile; "" is the default ("lecture").
	Profile string
	// Captions is an optional WebVTT file published as a SUBTITLES rendition, in CaptionsLanguage (an
	// RFC 5646 tag, "" if unknown).
	Captions, CaptionsLanguage string
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
	// FrameRate is the output frame rate; 0 for audio.
	FrameRate float64
	// CRF, MaxrateKbps: the rung's rate control (video); Kbps the nominal rate (audio).
	CRF, MaxrateKbps, Kbps int
	// Bytes of the rendition's playlist, init section and segments.
	Bytes int64
}

// Chapter is one slide of the lecture, from a detected slide change to the next.
type Chapter struct {
	Start, End float64 // seconds
	// Thumb is the thumbnail's path in the output tree, e.g. "thumbs/0003.jpg".
	Thumb string
}

// Result describes a complete HLS tree written by Transcode.
type Result struct {
	// Source is what ffprobe found in the source file.
	Source probe.Result
	// Profile is the profile used.
	Profile string
	// DurationSeconds of the lecture (as encoded).
	DurationSeconds float64
	// Renditions in master playlist order: video rungs tallest first, or the audio renditions of an
	// audio-only source.
	Renditions []Rendition
	// Audio is the shared audio rendition of a video source (its own bit rates, not added to video);
	// nil for video-only and audio-only sources.
	Audio *Rendition
	// Chapters are the detected slides (video only, nil when detection is off or found nothing usable),
	// published as ChaptersName with one thumbnail each.
	Chapters []Chapter
	// Poster is PosterName when a poster image was written, else "".
	Poster string
	// Captions is the SUBTITLES playlist's path when captions were given, else "".
	Captions string
	// Objects lists every file to publish as slash-separated paths relative to the output directory:
	// init sections, segments and images first, then media playlists, then "master.m3u8" last. Files
	// that nothing references are not listed.
	Objects []string
	// Bytes is the total size of Objects.
	Bytes int64
}

// MasterName is the master playlist's file name in the output tree and in object storage.
const MasterName = "master.m3u8"

// Transcode probes in.Source and writes a complete HLS tree into outDir (created if needed): one
// directory per rendition with index.m3u8, init.mp4 and seg_NNNNN.m4s, chapters.vtt with thumbs/, the
// poster, subs/ for captions, and master.m3u8. progress (may be nil) is called from the goroutine
// running Transcode, with a non-decreasing percentage ending at 100.
//
// Errors for which IsRejected is true mean the source can never be transcoded; Reason gives the
// teacher-readable explanation. Other errors (ffmpeg killed, ctx cancelled, disk full) may succeed on
// a retry.
func Transcode(ctx context.Context, cfg Config, in Input, outDir string, progress ProgressFunc) (Result, error) {
	cfg = cfg.withDefaults()
	p, info, err := Plan(ctx, cfg, in)
	if err != nil {
		return Result{}, err
	}
	if err := prepareOutDir(outDir, p.plan); err != nil {
		return Result{}, err
	}
	src, err := filepath.Abs(in.Source)
	if err != nil {
		return Result{}, fmt.Errorf("transcode: %w", err)
	}
	cfg.Logger.InfoContext(ctx, "transcode: encoding", "source", src, "duration", info.DurationSeconds,
		"video", info.HasVideo, "audio", info.HasAudio, "rungs", len(p.plan.rungs), "profile", p.Profile.Name,
		"fps", p.plan.frameRate)
	if err := runFFmpeg(ctx, cfg.FFmpeg, outDir, ffmpegArgs(src, p.plan), info.DurationSeconds, progress); err != nil {
		return Result{}, err
	}
	return finish(outDir, info, p, in)
}

// Planned is what Plan decided for a source: the profile and the encode.
type Planned struct {
	Profile Profile
	plan    plan
}

// Rungs returns the video rungs that will be encoded, tallest first (none for audio-only sources).
func (p Planned) Rungs() []Rung { return p.plan.rungs }

// FrameRate returns the output frame rate (0 for audio-only sources).
func (p Planned) FrameRate() float64 { return p.plan.frameRate }

// FFmpegArgs returns the ffmpeg arguments that encode src; they must run in an output directory
// prepared by PrepareOutDir (ffmpeg does not create the thumbnail directory).
func (p Planned) FFmpegArgs(src string) []string { return ffmpegArgs(src, p.plan) }

// PrepareOutDir creates outDir and the directories the encode writes into.
func (p Planned) PrepareOutDir(outDir string) error { return prepareOutDir(outDir, p.plan) }

func prepareOutDir(outDir string, p plan) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	if p.chapters {
		if err := os.MkdirAll(filepath.Join(outDir, thumbsDir), 0o755); err != nil {
			return fmt.Errorf("transcode: %w", err)
		}
	}
	return nil
}

// Plan probes in.Source and decides the encode: the profile, the rungs the source can fill, the output
// frame rate, and which stills to make. It rejects sources that can never be transcoded.
func Plan(ctx context.Context, cfg Config, in Input) (Planned, probe.Result, error) {
	cfg = cfg.withDefaults()
	if err := validateProfiles(cfg.Profiles); err != nil {
		return Planned{}, probe.Result{}, err
	}
	prof, ok := FindProfile(cfg.Profiles, in.Profile)
	if !ok {
		return Planned{}, probe.Result{}, &rejectedError{reason: fmt.Sprintf("unknown profile %q (choose one of %s)",
			in.Profile, strings.Join(ProfileNames(cfg.Profiles), ", "))}
	}
	if in.Captions != "" {
		if err := checkCaptions(in.Captions); err != nil {
			return Planned{}, probe.Result{}, err
		}
	}
	info, err := probe.Probe(ctx, cfg.FFprobe, in.Source)
	if err != nil {
		return Planned{}, probe.Result{}, err // invalid media stays recognisable through IsRejected
	}
	if limit := cfg.MaxDuration.Seconds(); info.DurationSeconds > limit {
		return Planned{}, info, &rejectedError{reason: fmt.Sprintf("the recording is %s long; the limit is %s",
			probe.FormatDuration(info.DurationSeconds), probe.FormatDuration(limit))}
	}
	p := newPlan(info, prof, !cfg.NoChapters)
	switch p.scaler = cfg.Scaler; p.scaler {
	case "", ScalerZscale, ScalerSwscale:
	default:
		return Planned{}, info, fmt.Errorf("transcode: scaler %q: want %q or %q", p.scaler, ScalerZscale, ScalerSwscale)
	}
	if p.scaler == "" && p.hasVideo {
		if p.scaler, err = DetectScaler(ctx, cfg.FFmpeg); err != nil {
			return Planned{}, info, err
		}
	}
	return Planned{Profile: prof, plan: p}, info, nil
}

// newPlan decides the encode of a probed source with a profile: pure, so the ladder choice is tested
// without media files.
func newPlan(info probe.Result, prof Profile, chapters bool) plan {
	p := plan{hasVideo: info.HasVideo, hasAudio: info.HasAudio, preset: prof.Preset, x264Params: prof.X264Params,
		aacCoder: prof.AACCoder, posterAt: -1}
	if p.hasAudio {
		p.audio = prof.Audio
		if p.hasVideo {
			p.audio = prof.Audio[:1]
		}
	}
	if p.hasVideo {
		w, h := info.DisplaySize()
		p.portrait = h > w
		p.rungs = planLadder(prof.Rungs, min(w, h))
		// The tallest rung is the decoded picture itself when it has the rung's size already (and even
		// sides, which 4:2:0 H.264 needs): no scaler touches the largest frames.
		p.scaleTop = p.rungs[0].Height != min(w, h) || w%2 != 0 || h%2 != 0
		// Always a constant rate: GOPs of a fixed frame count, and VFR that ffprobe cannot see (Matroska
		// and MPEG-TS report the nominal rate as the average) becomes harmless.
		p.frameRate = info.OutputFrameRate(prof.MaxFrameRate)
		p.deinterlace = info.Interlaced
		p.chapters = chapters
		// The title slide is usually on screen in the first seconds.
		p.posterAt = min(3, info.DurationSeconds/2)
		p.posterHeight = min(posterMaxHeight, p.rungs[0].Height)
	} else if p.hasAudio {
		p.posterAt = 0
	}
	return p
}

// finish checks ffmpeg's output, measures it, adds chapters and captions, and writes our master playlist.
func finish(outDir string, info probe.Result, pl Planned, in Input) (Result, error) {
	p := pl.plan
	res := Result{Source: info, Profile: pl.Profile.Name}
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
		res.DurationSeconds = max(res.DurationSeconds, v.duration)
	}
	// An MP4 whose index survived but whose data was cut off decodes "successfully", only short.
	if want := info.DurationSeconds; want-res.DurationSeconds > max(2, 0.05*want) {
		return Result{}, probe.Truncated(res.DurationSeconds, want)
	}

	if p.posterAt >= 0 {
		if fi, err := os.Stat(filepath.Join(outDir, PosterName)); err == nil && fi.Size() > 0 {
			res.Poster = PosterName
			res.Objects = append(res.Objects, PosterName)
			res.Bytes += fi.Size()
		}
	}
	if p.chapters {
		chapters, objects, n, err := finishChapters(outDir, res.DurationSeconds)
		if err != nil {
			return Result{}, err
		}
		res.Chapters = chapters
		res.Objects = append(res.Objects, objects...)
		res.Bytes += n
	}
	master := hls.Master{IndependentSegments: true}
	if in.Captions != "" {
		sub, objects, n, err := writeCaptions(outDir, in.Captions, res.DurationSeconds)
		if err != nil {
			return Result{}, err
		}
		res.Captions = sub
		res.Objects = append(res.Objects, objects...)
		playlists = append(playlists, sub)
		res.Bytes += n
		name := "Captions"
		if in.CaptionsLanguage != "" {
			name += " (" + in.CaptionsLanguage + ")"
		}
		master.Subtitles = []hls.SubtitleRendition{{GroupID: subsGroup, Name: name, Language: in.CaptionsLanguage, URI: sub}}
	}
	res.Objects = append(res.Objects, playlists...)

	var audio *variantOutput
	if p.hasAudio && p.hasVideo {
		a := variants[p.audio[0].Name]
		audio = &a
	}
	frameRate := math.Round(p.frameRate*1000) / 1000
	addVariant := func(rend Rendition, v variantOutput, mv hls.Variant) {
		mv.Bandwidth, mv.AverageBandwidth, mv.Codecs = rend.Bandwidth, rend.AverageBandwidth, rend.Codecs
		if res.Captions != "" {
			mv.Subtitles = subsGroup
		}
		res.Renditions = append(res.Renditions, rend)
		master.Variants = append(master.Variants, mv)
	}
	switch {
	case p.hasVideo:
		if audio != nil {
			res.Audio = &Rendition{Name: p.audio[0].Name, Bandwidth: audio.peak, AverageBandwidth: audio.average,
				Codecs: audio.codec, Kbps: p.audio[0].Kbps, Bytes: audio.bytes}
			master.Audio = []hls.AudioRendition{{GroupID: audioGroup, Name: "Audio", URI: audio.playlist, Default: true}}
		}
		for _, r := range p.rungs {
			v := variants[r.Name]
			rend := Rendition{Name: r.Name, Width: v.width, Height: v.height, Bandwidth: v.peak,
				AverageBandwidth: v.average, Codecs: v.codec, FrameRate: frameRate, CRF: r.CRF,
				MaxrateKbps: r.MaxrateKbps, Bytes: v.bytes}
			mv := hls.Variant{URI: v.playlist, Width: v.width, Height: v.height, FrameRate: frameRate}
			if audio != nil {
				// A player downloads both at once; the sum of peaks is what it must sustain.
				rend.Bandwidth += audio.peak
				rend.AverageBandwidth += audio.average
				rend.Codecs += "," + audio.codec
				mv.Audio = audioGroup
			}
			addVariant(rend, v, mv)
		}
	case p.hasAudio:
		for _, a := range p.audio {
			v := variants[a.Name]
			rend := Rendition{Name: a.Name, Bandwidth: v.peak, AverageBandwidth: v.average, Codecs: v.codec,
				Kbps: a.Kbps, Bytes: v.bytes}
			addVariant(rend, v, hls.Variant{URI: v.playlist})
		}
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
