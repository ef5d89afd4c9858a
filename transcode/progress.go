package transcode

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
)

// ProgressFunc receives the encode progress: percent of the source duration encoded (0-100, never
// decreasing) and the estimated seconds left (0 when unknown or done).
type ProgressFunc func(percent, etaSeconds float64)

// readProgress consumes ffmpeg's "-progress" stream: blocks of key=value lines, each block closed by
// "progress=continue" or, at the end, "progress=end". It reports once per block. It returns when r
// ends; it never stops reading early, so ffmpeg cannot block on a full pipe.
func readProgress(r io.Reader, durationSeconds float64, start time.Time, now func() time.Time, report ProgressFunc) {
	sc := bufio.NewScanner(r)
	var outUS int64 = -1
	last := 0.0
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch key {
		case "out_time_us":
			// "N/A" before the first packet is muxed; keep the previous value then.
			if v, err := strconv.ParseInt(value, 10, 64); err == nil && v >= 0 {
				outUS = v
			}
		case "progress":
			if report == nil {
				continue
			}
			if value == "end" {
				last = 100
				report(100, 0)
				continue
			}
			if outUS < 0 || durationSeconds <= 0 {
				continue
			}
			pct := min(100, float64(outUS)/1e6/durationSeconds*100)
			// out_time is the muxed position; interleaving can make it step back a little.
			pct = max(pct, last)
			last = pct
			report(pct, eta(pct, now().Sub(start)))
		}
	}
}

// eta extrapolates the elapsed wall time linearly: lecture content has a steady encode speed.
func eta(percent float64, elapsed time.Duration) float64 {
	if percent <= 0 || percent >= 100 {
		return 0
	}
	return elapsed.Seconds() * (100 - percent) / percent
}

// tailBuffer keeps the last lines written to it: ffmpeg's stderr, for error messages. Memory stays
// bounded however much ffmpeg prints.
type tailBuffer struct {
	lines   []string
	partial []byte
	max     int
}

func newTailBuffer(maxLines int) *tailBuffer { return &tailBuffer{max: maxLines} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = append(t.partial, p...)
			if len(t.partial) > 4096 {
				t.partial = t.partial[len(t.partial)-4096:]
			}
			break
		}
		t.add(string(append(t.partial, p[:i]...)))
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *tailBuffer) add(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(t.lines) == t.max {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.max-1]
	}
	t.lines = append(t.lines, line)
}

// String returns the kept lines, oldest first.
func (t *tailBuffer) String() string {
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.partial))
		if len(lines) > t.max {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
