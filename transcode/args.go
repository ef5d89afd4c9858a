package transcode

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Encoding constants shared by every rung. They are not per-rung data because the HLS contract depends
// on them: renditions can only be switched between at aligned key frames, and one audio rendition serves
// every video rendition.
const (
	// gopSeconds is the key-frame interval. Every rung gets a key frame at the same timestamps, so a
	// player can switch renditions at any segment boundary.
	gopSeconds = 2
	// segmentSeconds is the HLS target segment duration, a multiple of gopSeconds so segments cut on the
	// forced key frames and come out exactly this long.
	segmentSeconds = 6
	// audioBitrateKbps for AAC-LC stereo; speech needs far less, music in lectures a bit more.
	audioBitrateKbps = 128
	audioSampleRate  = 48000
	// audioGroup is the GROUP-ID of the shared audio rendition in ffmpeg's map and in our master.
	audioGroup = "audio"
)

// plan is everything the ffmpeg command depends on; building it is pure so tests can read the command.
type plan struct {
	rungs     []Rung
	hasVideo  bool
	hasAudio  bool
	frameRate float64 // source frame rate, for the GOP length in frames; 0 if unknown
	// portrait sources (taller than wide after rotation) are scaled by their width, so a rung's
	// Height is always the short side: a phone recording's "720p" is 720x1280, not 406x720.
	portrait bool
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
		names = append(names, audioName)
	}
	return names
}

// ffmpegArgs returns the arguments (without the program name) for the one ffmpeg process that decodes
// src once and writes every rendition as fMP4 HLS into the working directory: "{name}/index.m3u8",
// "{name}/init_{i}.mp4" and "{name}/seg_NNNNN.m4s". ffmpeg's own master playlist is not requested: we
// write ours from measured values.
func ffmpegArgs(src string, p plan) []string {
	args := []string{
		"-hide_banner", "-nostdin", "-y",
		"-loglevel", "error",
		// Machine-readable progress on stdout; -nostats keeps the human one off stderr, which we keep
		// for error messages.
		"-nostats", "-progress", "pipe:1",
		"-i", src,
	}
	var streamMap []string
	if p.hasVideo {
		args = append(args, "-filter_complex", filterGraph(p.rungs, p.portrait))
		for i := range p.rungs {
			args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		}
	}
	if p.hasAudio {
		args = append(args, "-map", "0:a:0")
	}
	if p.hasVideo {
		args = append(args,
			"-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast",
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
		args = append(args,
			"-c:a", "aac", "-profile:a", "aac_low", "-b:a", fmt.Sprintf("%dk", audioBitrateKbps),
			"-ac", "2", "-ar", strconv.Itoa(audioSampleRate),
		)
		streamMap = append(streamMap, variantMap("a", 0, audioName, p.hasVideo))
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
	return args
}

// filterGraph decodes the first video stream once and scales a copy per rung. "-2" keeps the aspect
// ratio with an even size; format=yuv420p makes 10-bit or 4:4:4 sources fit the High profile.
func filterGraph(rungs []Rung, portrait bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[0:v:0]split=%d", len(rungs))
	for i := range rungs {
		fmt.Fprintf(&b, "[s%d]", i)
	}
	for i, r := range rungs {
		size := fmt.Sprintf("w=-2:h=%d", r.Height)
		if portrait {
			size = fmt.Sprintf("w=%d:h=-2", r.Height)
		}
		fmt.Fprintf(&b, ";[s%d]scale=%s,format=yuv420p[v%d]", i, size, i)
	}
	return b.String()
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
