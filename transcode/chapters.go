package transcode

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// ChaptersName is the slide-chapter WebVTT file in the output tree.
const ChaptersName = "chapters.vtt"

// Chapter shaping. Slide decks have builds (bullets appearing one by one) and the odd quick flip back
// and forth; those are not chapters a student wants to jump between.
const (
	// minChapterSeconds merges a slide change into the previous chapter when it comes sooner than this.
	minChapterSeconds = 5.0
	// maxChapters bounds the list for content that is not slides (a film with many cuts): the minimum
	// chapter length doubles until the list fits.
	maxChapters = 200
)

// readSceneTimes parses the metadata filter's print output: one "frame:N pts:P pts_time:T" line per
// frame that passed the scene filter, followed by its lavfi.* values.
func readSceneTimes(data []byte) ([]float64, error) {
	var times []float64
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "frame:") {
			continue
		}
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "pts_time:"); ok {
				t, err := strconv.ParseFloat(v, 64)
				if err != nil || math.IsNaN(t) || math.IsInf(t, 0) {
					return nil, fmt.Errorf("scene times: bad pts_time in %q", line)
				}
				times = append(times, t)
			}
		}
	}
	return times, sc.Err()
}

// shapeChapters turns detected slide changes (times[i] has thumbnail thumbs[i]) into chapters covering
// 0..duration. A change sooner than the minimum length after the chapter's start merges into it, and
// the chapter keeps the later thumbnail: after a build, the later frame shows the finished slide.
func shapeChapters(times []float64, thumbs []string, duration float64) []Chapter {
	if len(times) == 0 || len(times) != len(thumbs) || !(duration > 0) {
		return nil
	}
	for minLen := minChapterSeconds; ; minLen *= 2 {
		var out []Chapter
		for i, t := range times {
			t = min(max(t, 0), duration)
			if len(out) == 0 {
				out = append(out, Chapter{Start: 0, Thumb: thumbs[i]})
				continue
			}
			if duration-t < minLen {
				break // closing seconds (a fade out, an end card): not a chapter, not a better picture
			}
			last := &out[len(out)-1]
			if t-last.Start < minLen {
				last.Thumb = thumbs[i]
				continue
			}
			last.End = t
			out = append(out, Chapter{Start: t, Thumb: thumbs[i]})
		}
		out[len(out)-1].End = duration
		if len(out) <= maxChapters {
			return out
		}
	}
}

// finishChapters reads what the chapter branch of the encode wrote (scenes.txt and thumbs/NNNN.jpg),
// writes chapters.vtt, deletes the thumbnails no chapter uses, and returns the chapters, the objects to
// publish and their size. A lecture without a usable result (a still picture, an empty branch) has no
// chapters; that is not an error.
func finishChapters(outDir string, duration float64) ([]Chapter, []string, int64, error) {
	data, err := os.ReadFile(filepath.Join(outDir, scenesFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil, 0, nil
		}
		return nil, nil, 0, fmt.Errorf("transcode: %w", err)
	}
	times, err := readSceneTimes(data)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("transcode: %w", err)
	}
	thumbs := make([]string, len(times))
	for i := range times {
		thumbs[i] = path.Join(thumbsDir, fmt.Sprintf("%04d.jpg", i+1))
		if _, err := os.Stat(filepath.Join(outDir, filepath.FromSlash(thumbs[i]))); err != nil {
			// The image writer and the metadata printer disagree: publish no chapters rather than
			// chapters with the wrong pictures.
			return nil, nil, 0, nil
		}
	}
	chapters := shapeChapters(times, thumbs, duration)
	if chapters == nil {
		return nil, nil, 0, nil
	}
	used := make(map[string]bool)
	var objects []string
	var size int64
	for _, c := range chapters {
		used[c.Thumb] = true
		fi, err := os.Stat(filepath.Join(outDir, filepath.FromSlash(c.Thumb)))
		if err != nil {
			return nil, nil, 0, fmt.Errorf("transcode: %w", err)
		}
		objects = append(objects, c.Thumb)
		size += fi.Size()
	}
	for _, t := range thumbs {
		if !used[t] {
			_ = os.Remove(filepath.Join(outDir, filepath.FromSlash(t)))
		}
	}
	vtt := chaptersVTT(chapters)
	if err := os.WriteFile(filepath.Join(outDir, ChaptersName), vtt, 0o644); err != nil {
		return nil, nil, 0, fmt.Errorf("transcode: %w", err)
	}
	_ = os.Remove(filepath.Join(outDir, scenesFile))
	return chapters, append(objects, ChaptersName), size + int64(len(vtt)), nil
}

// chaptersVTT writes chapters as a WebVTT chapters track: cue identifier = thumbnail path (so a player
// can show each chapter's picture), text = "Slide N".
func chaptersVTT(chapters []Chapter) []byte {
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	for i, c := range chapters {
		fmt.Fprintf(&b, "\n%s\n%s --> %s\nSlide %d\n", c.Thumb, vttTime(c.Start), vttTime(c.End), i+1)
	}
	return b.Bytes()
}

// vttTime formats seconds as WebVTT's hh:mm:ss.ttt.
func vttTime(seconds float64) string {
	ms := int64(math.Round(seconds * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}
