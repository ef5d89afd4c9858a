package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar shows an upload's progress. On a terminal it is one line redrawn in place at most five
// times a second; anywhere else (a log file, CI) it prints a plain line at every tenth of the file, so a
// log neither fills with carriage returns nor stays silent for an hour.
type progressBar struct {
	w     io.Writer
	tty   bool
	total int64
	now   func() time.Time

	first     progressSample   // for the average rate shown at the end
	samples   []progressSample // the last few seconds, for the current rate
	lastDraw  time.Time
	lastTenth int64
	width     int // of the last line drawn, to blank what a shorter one leaves behind
}

type progressSample struct {
	at   time.Time
	sent int64
}

const (
	redrawEvery = 200 * time.Millisecond
	rateWindow  = 5 * time.Second
)

func newProgressBar(w io.Writer, tty bool, total int64, now func() time.Time) *progressBar {
	return &progressBar{w: w, tty: tty, total: total, now: now, lastTenth: -1}
}

// isTerminal says whether w is a character device (a terminal), where \r redraws a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update records that sent bytes of total are on their way and draws when it is time to.
func (p *progressBar) update(sent int64) {
	t := p.now()
	if n := len(p.samples); n > 0 && sent < p.samples[n-1].sent {
		p.samples = p.samples[:0] // a failed request: the server's offset is behind what was sent
	}
	p.samples = append(p.samples, progressSample{t, sent})
	if p.first.at.IsZero() || sent < p.first.sent {
		p.first = progressSample{t, sent}
	}
	for len(p.samples) > 2 && t.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	if p.tty {
		if !p.lastDraw.IsZero() && t.Sub(p.lastDraw) < redrawEvery && sent < p.total {
			return
		}
		p.lastDraw = t
		line := p.line(sent)
		pad := max(0, p.width-len(line))
		p.width = len(line)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		return
	}
	tenth := int64(10)
	if p.total > 0 {
		tenth = sent * 10 / p.total
	}
	if tenth > p.lastTenth {
		if p.lastTenth >= 0 || sent == p.total { // the first call only sets where we start
			fmt.Fprintln(p.w, p.line(sent))
		}
		p.lastTenth = tenth
	}
}

// done ends the terminal line so what follows starts on a fresh one.
func (p *progressBar) done() {
	if p.tty && !p.lastDraw.IsZero() {
		fmt.Fprintln(p.w)
		p.lastDraw = time.Time{}
	}
}

func (p *progressBar) line(sent int64) string {
	rate, eta := -1.0, time.Duration(-1)
	if n := len(p.samples); sent >= p.total && n > 0 {
		if dt := p.samples[n-1].at.Sub(p.first.at).Seconds(); dt > 0 {
			rate = float64(sent-p.first.sent) / dt
		}
	} else if n > 1 {
		first, last := p.samples[0], p.samples[n-1]
		if dt := last.at.Sub(first.at).Seconds(); dt >= 0.5 {
			rate = float64(last.sent-first.sent) / dt
			if rate > 0 {
				eta = time.Duration(float64(p.total-sent) / rate * float64(time.Second))
			}
		}
	}
	return formatProgress(sent, p.total, rate, eta, p.tty)
}

// formatProgress is one progress line: a bar on a terminal, then percent, MiB sent of total, rate and
// time left. rate < 0 or eta < 0 mean not known yet.
func formatProgress(sent, total int64, rate float64, eta time.Duration, bar bool) string {
	frac := 1.0
	if total > 0 {
		frac = float64(sent) / float64(total)
	}
	var b strings.Builder
	if bar {
		const width = 24
		full := int(frac * width)
		b.WriteString("[" + strings.Repeat("=", full))
		if full < width {
			b.WriteString(">" + strings.Repeat(" ", width-full-1))
		}
		b.WriteString("] ")
	} else {
		b.WriteString("upload ")
	}
	fmt.Fprintf(&b, "%3d%%  %s/%s MiB", int(frac*100), mib(sent), mib(total))
	if rate >= 0 {
		fmt.Fprintf(&b, "  %s MiB/s", mib(int64(rate)))
	} else {
		b.WriteString("  --- MiB/s")
	}
	switch {
	case sent >= total:
	case eta >= 0:
		b.WriteString("  ETA " + formatETA(eta))
	default:
		b.WriteString("  ETA --:--")
	}
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// formatETA is m:ss, or h:mm:ss from an hour up.
func formatETA(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// formatTranscode is the --wait line for a lecture being processed.
func formatTranscode(status string, progress, etaSeconds float64) string {
	switch status {
	case "queued":
		return "queued: waiting for a worker"
	case "transcoding":
		s := fmt.Sprintf("transcoding %3d%%", int(progress))
		if etaSeconds > 0 {
			s += "  ETA " + formatETA(time.Duration(etaSeconds*float64(time.Second)))
		}
		return s
	}
	return status
}
