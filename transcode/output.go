package transcode

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lectern/lectern/internal/hls"
)

// initName is the init section's name in every rendition directory.
const initName = "init.mp4"

// variantOutput is one rendition directory after ffmpeg, checked and measured.
type variantOutput struct {
	playlist      string   // "720p/index.m3u8", relative to the output root
	media         []string // init section then segments, relative to the output root
	bytes         int64    // playlist + media
	peak, average int      // bits per second
	codec         string
	width, height int
	duration      float64 // seconds, the sum of EXTINF
}

// finishVariant checks that ffmpeg wrote a complete VOD playlist whose every file exists, gives the init
// section its stable name, and measures the rendition.
func finishVariant(outDir, name string) (variantOutput, error) {
	dir := filepath.Join(outDir, name)
	plPath := filepath.Join(dir, "index.m3u8")
	data, err := os.ReadFile(plPath)
	if err != nil {
		return variantOutput{}, fmt.Errorf("transcode: %s: %w", name, err)
	}
	media, err := hls.ParseMedia(data)
	if err != nil {
		return variantOutput{}, fmt.Errorf("transcode: %s playlist: %w", name, err)
	}
	if !media.Ended || media.InitURI == "" || len(media.Segments) == 0 {
		return variantOutput{}, fmt.Errorf("transcode: %s playlist incomplete (ended=%v, init=%q, %d segments)",
			name, media.Ended, media.InitURI, len(media.Segments))
	}
	if media.InitURI != initName {
		if data, err = renameInit(dir, data, media.InitURI); err != nil {
			return variantOutput{}, fmt.Errorf("transcode: %s: %w", name, err)
		}
		if err := os.WriteFile(plPath, data, 0o644); err != nil {
			return variantOutput{}, fmt.Errorf("transcode: %w", err)
		}
	}

	out := variantOutput{playlist: path.Join(name, "index.m3u8"), bytes: int64(len(data))}
	initData, err := os.ReadFile(filepath.Join(dir, initName))
	if err != nil {
		return variantOutput{}, fmt.Errorf("transcode: %s: %w", name, err)
	}
	track, err := readInitSegment(initData)
	if err != nil {
		return variantOutput{}, fmt.Errorf("transcode: %s: %w", name, err)
	}
	out.codec, out.width, out.height = track.codec, track.width, track.height
	out.media = append(out.media, path.Join(name, initName))
	out.bytes += int64(len(initData))

	sizes := make([]segmentSize, 0, len(media.Segments))
	for _, s := range media.Segments {
		if !isBaseName(s.URI) {
			return variantOutput{}, fmt.Errorf("transcode: %s: unexpected segment URI %q", name, s.URI)
		}
		fi, err := os.Stat(filepath.Join(dir, s.URI))
		if err != nil {
			return variantOutput{}, fmt.Errorf("transcode: %s: %w", name, err)
		}
		sizes = append(sizes, segmentSize{bytes: fi.Size(), duration: s.Duration})
		out.media = append(out.media, path.Join(name, s.URI))
		out.bytes += fi.Size()
	}
	out.peak, out.average = bitrates(sizes, media.TargetDuration)
	out.duration = media.Duration()
	return out, nil
}

// renameInit renames ffmpeg's "init_0.mp4" to init.mp4 and returns the playlist with its EXT-X-MAP
// changed to match. ffmpeg 5.1 appends the variant index to -hls_fmp4_init_filename whenever there is
// more than one variant stream, and the only alternative (%v in the name) repeats the rendition name.
func renameInit(dir string, playlist []byte, oldName string) ([]byte, error) {
	if !isBaseName(oldName) {
		return nil, fmt.Errorf("unexpected init URI %q", oldName)
	}
	oldTag := []byte(`#EXT-X-MAP:URI="` + oldName + `"`)
	if n := bytes.Count(playlist, oldTag); n != 1 {
		return nil, fmt.Errorf("found %d EXT-X-MAP tags for %s, want 1", n, oldName)
	}
	if err := os.Rename(filepath.Join(dir, oldName), filepath.Join(dir, initName)); err != nil {
		return nil, err
	}
	return bytes.Replace(playlist, oldTag, []byte(`#EXT-X-MAP:URI="`+initName+`"`), 1), nil
}

// isBaseName accepts the plain file names ffmpeg writes, so a playlist can never make us read or
// publish a file outside its rendition directory.
func isBaseName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\?#`) && !strings.Contains(s, "..")
}
