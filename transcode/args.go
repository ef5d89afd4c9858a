package transcode

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Encoding constants shared by every profile. They are not per-profile data because the HLS contract
// depends on them: renditions can only be switched between at aligned key frames.
const (
	// gopSeconds is the key-frame interval. Every rung gets a key frame at the same timestamps, so a
	// player can switch renditions at any segment boundary.
	gopSeconds = 2
	// segmentSeconds is the HLS target segment duration, a multiple of gopSeconds so segments cut on the
	// forced key frames and come out exactly this long.
	segmentSeconds  = 6
	audioSampleRate = 48000
	// audioGroup is the GROUP-ID of the shared audio rendition in ffmpeg's map and in our master.
	audioGroup = "audio"
)

// Slide chapters and stills. Scene detection runs on a small copy of the picture at a low frame rate:
// a slide change is a large, sudden change of the whole picture, which 320-pixel frames twice a second
// show as well as the full picture does, at a tiny fraction of the cost.
const (
	// chapterFPS is how often the chapter branch looks at the picture; chapter times are exact to 1/chapterFPS s.
	chapterFPS = 2
	// thumbWidth is the width of chapter thumbnails (the height follows the aspect ratio).
	thumbWidth = 320
	// sceneThreshold is ffmpeg's scene score (0-1) above which a frame starts a new chapter: slide
	// changes score far above it, a moving camera inset or a pointer far below.
	sceneThreshold = 0.12
	// scenesFile is where ffmpeg's metadata filter writes the time of every chapter start.
	scenesFile = "scenes.txt"
	thumbsDir  = "thumbs"
	// PosterName is the poster image in the output tree: a frame early in the lecture (the title slide),
	// or a waveform picture for audio-only lectures.
	PosterName = "poster.jpg"
	// posterMaxHeight bounds the poster's short side: it is shown at player size, not full resolution.
	posterMaxHeight = 720
	// audioPosterSeconds of audio are drawn in an audio-only lecture's poster; the filter keeps them in
	// memory, so it must not be the whole of a six-hour recording.
	audioPosterSeconds = 120
)

// plan is everything the ffmpeg command depends on; building it is pure so tests can read the command.
type plan struct {
	rungs    []Rung
	audio    []AudioRung // one shared rendition with video; the whole audio ladder without
	hasVideo bool
	hasAudio bool
	preset   string
	// x264Params and aacCoder refine the encoders (Profile.X264Params, Profile.AACCoder); "" = defaults.
	x264Params, aacCoder string
	// frameRate is the constant output frame rate (variable-rate phone recordings and sources above the
	// profile's maximum are converted), for the GOP length in frames and FRAME-RATE; 0 = keep the source's.
	frameRate   float64
	deinterlace bool
	// scaler is ScalerZscale or ScalerSwscale ("" = swscale); scaleTop is false when the tallest rung is
	// the source picture as it is.
	scaler   string
	scaleTop bool
	// portrait sources (taller than wide after rotation) are scaled by their width, so a rung's
	// Height is always the short side: a phone recording's "720p" is 720x1280, not 406x720.
	portrait bool
	// chapters adds the scene-detection branch (chapter times and thumbnails).
	chapters bool
	// posterAt is the time of the poster frame of a video lecture; < 0 means no poster.
	posterAt float64
	// posterHeight is the poster's short side.
	posterHeight int
}

// variantNames returns the output directories in var_stream_map order.
func (p plan) variantNames() []string {
	var names []string
	if p.hasVideo {
		for _, r := range p.rungs {
			names = append(names, r.Name)
		}
	}
	if p.hasAudio {
		for _, a := range p.audio {
			names = append(names, a.Name)
		}
	}
	return names
}

// ffmpegArgs returns the arguments (without the program name) for the one ffmpeg process that decodes
// src once and writes, into the working directory: every rendition as fMP4 HLS ("{name}/index.m3u8",
// "{name}/init_{i}.mp4", "{name}/seg_NNNNN.m4s"), and when asked the chapter thumbnails
// ("thumbs/NNNN.jpg" with their times in scenes.txt) and the poster. ffmpeg's own master playlist is
// not requested: we write ours from measured values.
func ffmpegArgs(src string, p plan) []string {
	args := []string{
		"-hide_banner", "-nostdin", "-y",
		"-loglevel", "error",
		// Machine-readable progress on stdout; -nostats keeps the human one off stderr, which we keep
		// for error messages.
		"-nostats", "-progress", "pipe:1",
		// Filters run without slice threads: x264's frame threads already keep every core busy, and on
		// two cores zscale's slices only made the encoders wait (47 s instead of 49 s for the benchmark
		// lecture).
		"-filter_complex_threads", "1",
		"-i", src,
	}
	graph, extra := filterGraph(p)
	if graph != "" {
		args = append(args, "-filter_complex", graph)
	}
	var streamMap []string
	if p.hasVideo {
		for i := range p.rungs {
			args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		}
	}
	if p.hasAudio {
		for range p.audio {
			args = append(args, "-map", "0:a:0")
		}
	}
	if p.hasVideo {
		args = append(args,
			"-c:v", "libx264", "-profile:v", "high", "-preset", p.preset,
		)
		if p.x264Params != "" {
			args = append(args, "-x264-params", p.x264Params)
		}
		args = append(args,
			// Key frames at the same timestamps in every rung: forced by time (robust to variable frame
			// rate), no scene-cut key frames, and a GOP length that agrees with the forced interval.
			"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%d)", gopSeconds),
			"-sc_threshold", "0",
		)
		if g := gopFrames(p.frameRate); g > 0 {
			args = append(args, "-g", strconv.Itoa(g), "-keyint_min", strconv.Itoa(g))
		}
		for i, r := range p.rungs {
			s := strconv.Itoa(i)
			args = append(args,
				"-crf:v:"+s, strconv.Itoa(r.CRF),
				"-maxrate:v:"+s, fmt.Sprintf("%dk", r.MaxrateKbps),
				"-bufsize:v:"+s, fmt.Sprintf("%dk", r.BufsizeKbps),
			)
		}
		for i, r := range p.rungs {
			streamMap = append(streamMap, variantMap("v", i, r.Name, p.hasAudio))
		}
	}
	if p.hasAudio {
		// -ac 2 downmixes 5.1 (and upmixes mono) to the stereo every player handles.
		args = append(args, "-c:a", "aac", "-profile:a", "aac_low")
		if p.aacCoder != "" {
			args = append(args, "-aac_coder", p.aacCoder)
		}
		args = append(args, "-ac", "2", "-ar", strconv.Itoa(audioSampleRate))
		for i, a := range p.audio {
			args = append(args, "-b:a:"+strconv.Itoa(i), fmt.Sprintf("%dk", a.Kbps))
			streamMap = append(streamMap, variantMap("a", i, a.Name, p.hasVideo))
		}
	}
	args = append(args,
		// Filtered video can lag the audio by many packets at start-up; the default queue is too small
		// for split graphs on some inputs ("Too many packets buffered for output stream").
		"-max_muxing_queue_size", "4096",
		"-f", "hls",
		"-hls_segment_type", "fmp4",
		"-hls_time", strconv.Itoa(segmentSeconds),
		"-hls_playlist_type", "vod",
		"-hls_flags", "independent_segments",
		// ffmpeg 5.1 suffixes the init name with the variant index ("init_0.mp4") whenever there is more
		// than one variant stream; finishVariant renames it to init.mp4.
		"-hls_fmp4_init_filename", "init.mp4",
		"-start_number", "1",
		"-hls_segment_filename", "%v/seg_%05d.m4s",
		"-var_stream_map", strings.Join(streamMap, " "),
		"%v/index.m3u8",
	)
	return append(args, extra...)
}

// filterGraph returns the -filter_complex graph and the extra outputs (thumbnails, poster) it feeds.
//
// The video is decoded once, made progressive and constant-rate if needed, and converted once to 8-bit
// 4:2:0 (what H.264 High carries; 10-bit, 4:4:4 and full-range sources all end up here). The ladder is
// then a cascade: each rung is scaled from the rung above it, not from the source, so only the first
// step reads full-size frames; a top rung of the source's own size is not scaled at all. On the
// 1080p benchmark lecture this took the scaling from 21 to 11 CPU seconds, all of it on ffmpeg's one
// filtering thread that also feeds every encoder. Each step is at most 1.5x (2x from 4K), where a
// bicubic cascade stays within SSIM 0.997 of scaling straight from the source (240p and 360p of the
// benchmark lecture: 0.9977 and 0.9983 with zscale, 0.9986 and 0.9993 with swscale). The chapter and poster
// branches take their own copies of the full picture.
func filterGraph(p plan) (string, []string) {
	var b strings.Builder
	var extra []string
	if !p.hasVideo {
		if p.posterAt < 0 || !p.hasAudio {
			return "", nil
		}
		// An audio-only lecture's poster: the waveform of its first minutes.
		fmt.Fprintf(&b, "[0:a:0]atrim=end=%d,aformat=channel_layouts=mono,showwavespic=s=1280x720:colors=0x2563eb,format=yuvj420p[poster]",
			audioPosterSeconds)
		return b.String(), posterOutput()
	}
	b.WriteString("[0:v:0]")
	if p.deinterlace {
		b.WriteString("bwdif=mode=send_frame:deint=interlaced,")
	}
	if p.frameRate > 0 {
		fmt.Fprintf(&b, "fps=%s,", strconv.FormatFloat(p.frameRate, 'f', -1, 64))
	}
	b.WriteString("format=yuv420p")
	branches := []string{"[ladder]"}
	if p.chapters {
		branches = append(branches, "[chapters]")
	}
	if p.posterAt >= 0 {
		branches = append(branches, "[still]")
	}
	if len(branches) > 1 {
		fmt.Fprintf(&b, ",split=%d", len(branches))
	}
	b.WriteString(strings.Join(branches, ""))
	size := func(h int) string {
		if p.portrait {
			return fmt.Sprintf("w=%d:h=-2", h)
		}
		return fmt.Sprintf("w=-2:h=%d", h)
	}
	scale := func(h int) string {
		if p.scaler == ScalerZscale {
			return "zscale=" + size(h) + ":f=bicubic"
		}
		return "scale=" + size(h) + ":flags=bicubic"
	}
	in := "[ladder]"
	for i, r := range p.rungs {
		var steps []string
		if i > 0 || p.scaleTop {
			steps = append(steps, scale(r.Height))
		}
		out := fmt.Sprintf("[v%d]", i)
		if i < len(p.rungs)-1 {
			steps = append(steps, "split=2")
			out += fmt.Sprintf("[c%d]", i)
		}
		if len(steps) == 0 {
			steps = append(steps, "null")
		}
		fmt.Fprintf(&b, ";%s%s%s", in, strings.Join(steps, ","), out)
		in = fmt.Sprintf("[c%d]", i)
	}
	if p.chapters {
		// The first frame always starts chapter 1; metadata=print records the time of every frame that
		// passes, in the same order as the thumbnails are numbered.
		fmt.Fprintf(&b, ";[chapters]fps=%d,scale=w=%d:h=-2,select='eq(n,0)+gt(scene,%s)',metadata=print:file=%s,format=yuvj420p[thumbs]",
			chapterFPS, thumbWidth, strconv.FormatFloat(sceneThreshold, 'f', -1, 64), scenesFile)
		extra = append(extra,
			"-map", "[thumbs]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough",
			"-f", "image2", "-start_number", "1", thumbsDir+"/%04d.jpg")
	}
	if p.posterAt >= 0 {
		// The first frame at or after posterAt, and only that one.
		fmt.Fprintf(&b, ";[still]select='isnan(prev_selected_t)*gte(t,%s)',scale=%s,format=yuvj420p[poster]",
			strconv.FormatFloat(p.posterAt, 'f', 3, 64), size(p.posterHeight))
		extra = append(extra, posterOutput()...)
	}
	return b.String(), extra
}

func posterOutput() []string {
	return []string{"-map", "[poster]", "-c:v", "mjpeg", "-q:v", "3", "-f", "image2", "-update", "1", PosterName}
}

func variantMap(kind string, i int, name string, withGroup bool) string {
	s := fmt.Sprintf("%s:%d,name:%s", kind, i, name)
	if withGroup {
		s = fmt.Sprintf("%s:%d,agroup:%s,name:%s", kind, i, audioGroup, name)
	}
	return s
}

// gopFrames is the GOP length in frames for the source frame rate, or 0 when the rate is unknown or
// implausible (then the forced key frames alone set the interval).
func gopFrames(fps float64) int {
	if !(fps > 0 && fps <= 240) {
		return 0
	}
	return int(math.Round(fps * gopSeconds))
}
