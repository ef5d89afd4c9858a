package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/plan"
)

// Defaults of `lectern plan` that come from this project's measurements (docs/benchmarks.md) or
// from what Lectern writes; docs/scale.md explains each.
const (
	// defaultCoreRPS: the edge served 9 627 hits/s of a ~400 KB segment on 2 cores shared with wrk
	// ("Edge cache hits at the end of issue 6"), about 4 800 per core.
	defaultCoreRPS = "4800"
	// defaultTranscodeSpeed: `lectern transcode` ran the lecture profile at 2.68x realtime on 2 cores
	// ("Transcode: lectern vs bare ffmpeg vs a fixed ladder").
	defaultTranscodeSpeed = "2.68"
	// defaultSegment: the worker's -hls_time.
	defaultSegment = "6s"
)

// runPlan is capacity planning: the arithmetic of internal/plan from flags, as a table or JSON.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan", "plan --students N --regions N (--ladder NAME:RATE:SHARE,... | --master FILE|URL --mix NAME:SHARE,...) [flags]", stderr)
	students := fs.String("students", "", "students watching at once (required), e.g. 3000000")
	regions := fs.String("regions", "1", "regions the students are spread evenly over")
	ladder := fs.String("ladder", "", "the rungs: NAME:RATE:SHARE,... e.g. 1080p:546kb/s:10%,720p:345kb/s:90% (RATE is the average a student downloads, audio included)")
	master := fs.String("master", "", "take the rung rates from a master playlist (FILE or http(s) URL): AVERAGE-BANDWIDTH, else BANDWIDTH")
	mix := fs.String("mix", "", "with --master: the share of students per rung, NAME:SHARE,... e.g. 1080p:10%,720p:90%")
	audio := fs.String("audio", "0", "rate of the one audio rendition every rung includes (stored once, fetched beside each video segment); 0: audio muxed into each rung")
	nic := fs.String("nic", "10Gb/s", "an edge's network link")
	nicUsable := fs.String("nic-usable", "80%", "the part of the link an edge can fill")
	edgeCores := fs.String("edge-cores", "16", "cores per edge")
	coreRPS := fs.String("core-rps", defaultCoreRPS, "cache hits per second one core serves (docs/benchmarks.md edge-hit figures; pick the segment size nearest 'bytes per request')")
	hitRatio := fs.String("hit-ratio", "99%", "target hit ratio of a region (requests)")
	segment := fs.String("segment", defaultSegment, "segment duration")
	headroom := fs.String("headroom", "25%", "spare capacity added to every count of machines")
	edges := fs.String("edges", "0", "a fleet size to check: the bitrate per student it supports (0: none)")
	uploadHours := fs.String("upload-hours", "0", "hours of lectures published per day (storage)")
	retention := fs.String("retention", "365", "days lectures are kept (storage)")
	sourceRate := fs.String("source-rate", "0", "average bit rate of the uploaded sources, kept for re-transcoding (0: not counted)")
	uploadRate := fs.String("upload-rate", "0", "hours of video uploaded per hour at the peak (transcode workers)")
	speed := fs.String("transcode-speed", defaultTranscodeSpeed, "hours of video one worker transcodes per hour (x realtime)")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q: every input is a flag (lectern plan -h)", pos[0])
	}

	p := flagParser{}
	in := plan.Inputs{
		Students:          p.count("students", *students),
		Regions:           p.count("regions", *regions),
		AudioRate:         p.rateOrZero("audio", *audio),
		NIC:               p.rate("nic", *nic),
		NICUsable:         p.fraction("nic-usable", *nicUsable),
		EdgeCores:         p.count("edge-cores", *edgeCores),
		CoreRequests:      p.number("core-rps", *coreRPS),
		HitRatio:          p.fraction("hit-ratio", *hitRatio),
		SegmentSeconds:    p.seconds("segment", *segment),
		Headroom:          p.fraction("headroom", *headroom),
		Edges:             p.count("edges", *edges),
		UploadHoursPerDay: p.number("upload-hours", *uploadHours),
		RetentionDays:     p.number("retention", *retention),
		SourceRate:        p.rateOrZero("source-rate", *sourceRate),
		UploadRate:        p.number("upload-rate", *uploadRate),
		TranscodeSpeed:    p.number("transcode-speed", *speed),
	}
	if p.err != nil {
		return p.err
	}
	if *students == "" {
		return errors.New("--students: give the number of students watching at once, e.g. --students 3000000")
	}
	in.SeparateAudio = in.AudioRate > 0
	switch {
	case *ladder != "" && *master != "":
		return errors.New("give --ladder or --master, not both")
	case *ladder != "":
		if *mix != "" {
			return errors.New("--mix goes with --master; --ladder carries its shares (NAME:RATE:SHARE)")
		}
		if in.Rungs, err = plan.ParseLadder(*ladder); err != nil {
			return fmt.Errorf("--ladder: %v", err)
		}
	case *master != "":
		if *mix == "" {
			return errors.New("--master needs --mix: the share of students per rung, e.g. --mix 1080p:10%,720p:40%,480p:50%")
		}
		shares, err := plan.ParseMix(*mix)
		if err != nil {
			return fmt.Errorf("--mix: %v", err)
		}
		data, err := readMaster(ctx, *master)
		if err != nil {
			return fmt.Errorf("--master: %v", err)
		}
		ml, err := plan.LadderFromMaster(data, shares)
		if err != nil {
			return fmt.Errorf("--master %s with --mix: %v", *master, err)
		}
		in.Rungs = ml.Rungs
		in.SeparateAudio = in.SeparateAudio || ml.SeparateAudio
		if ml.Peak && !*asJSON {
			fmt.Fprintln(stderr, "lectern plan: note: a variant has no AVERAGE-BANDWIDTH; its peak BANDWIDTH is used (an over-estimate)")
		}
		if ml.SeparateAudio && in.AudioRate == 0 && !*asJSON {
			// The master does not say what the shared audio costs; without it storage counts it per rung.
			fmt.Fprintln(stderr, "lectern plan: note: the rungs share an audio rendition; give --audio RATE (its bit rate) to store it once")
		}
	default:
		return errors.New("no ladder: give --ladder NAME:RATE:SHARE,... or --master FILE --mix NAME:SHARE,...")
	}
	res, err := plan.Compute(in)
	if err != nil {
		// One line: the first problem is enough to act on.
		return errors.New(strings.SplitN(err.Error(), "\n", 2)[0])
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return plan.WriteTable(stdout, res)
}

// readMaster reads a master playlist from a file or an http(s) URL (a published lecture's master,
// signed playback URLs included).
func readMaster(ctx context.Context, src string) ([]byte, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return os.ReadFile(src)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", src, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// flagParser reads flag values written by people, keeping the first error, which names the flag and
// says what to write.
type flagParser struct{ err error }

func (p *flagParser) fail(name, value, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("--%s %q: %s", name, value, want)
	}
}

func (p *flagParser) count(name, s string) int {
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), " ", ""))
	if err != nil || n < 0 {
		p.fail(name, s, "write a whole number, e.g. 12")
		return 0
	}
	return n
}

func (p *flagParser) number(name, s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v >= 0) || math.IsInf(v, 0) {
		p.fail(name, s, "write a number, e.g. 2.5")
		return 0
	}
	return v
}

func (p *flagParser) rate(name, s string) float64 {
	v, err := plan.ParseRate(s)
	if err != nil {
		p.fail(name, s, "write a bit rate, e.g. 10Gb/s or 448kb/s")
	}
	return v
}

func (p *flagParser) rateOrZero(name, s string) float64 {
	if strings.TrimSpace(s) == "0" {
		return 0
	}
	return p.rate(name, s)
}

func (p *flagParser) fraction(name, s string) float64 {
	v, err := plan.ParseFraction(s)
	if err != nil {
		p.fail(name, s, "write a percentage or fraction, e.g. 80% or 0.8")
	}
	return v
}

func (p *flagParser) seconds(name, s string) float64 {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil && d > 0 {
		return d.Seconds()
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v > 0) {
		p.fail(name, s, "write a duration, e.g. 6s")
		return 0
	}
	return v
}
