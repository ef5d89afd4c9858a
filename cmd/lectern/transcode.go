package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lectern/lectern/transcode"
)

// runTranscode is the one-shot tool: the worker's pipeline on a local file, for teachers who want to see
// what their lecture becomes and for benchmarks.
func runTranscode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("transcode", "transcode [flags] INPUT OUTDIR", stderr)
	profile := fs.String("profile", transcode.DefaultProfileName,
		"encoding profile: "+strings.Join(transcode.ProfileNames(transcode.DefaultProfiles()), " or "))
	chapters := fs.Bool("chapters", true, "detect slide changes: chapters.vtt, a thumbnail per chapter")
	captions := fs.String("captions", "", "WebVTT captions file to publish as a SUBTITLES rendition")
	captionsLang := fs.String("captions-lang", "", "language of the captions (RFC 5646, e.g. ko or en)")
	printFFmpeg := fs.Bool("print-ffmpeg", false, "print the ffmpeg command line (to run inside OUTDIR) and exit without encoding")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg binary")
	ffprobe := fs.String("ffprobe", "ffprobe", "ffprobe binary")
	maxDuration := fs.Duration("max-duration", 6*time.Hour, "reject longer sources")
	quiet := fs.Bool("quiet", false, "no progress line")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 2 {
		fs.Usage()
		fmt.Fprintln(stderr, "lectern transcode: needs INPUT and OUTDIR")
		return errUsage
	}
	cfg := transcode.Config{FFmpeg: *ffmpeg, FFprobe: *ffprobe, NoChapters: !*chapters, MaxDuration: *maxDuration}
	in := transcode.Input{Source: pos[0], Profile: *profile, Captions: *captions, CaptionsLanguage: *captionsLang}
	outDir := pos[1]

	if *printFFmpeg {
		plan, _, err := transcode.Plan(ctx, cfg, in)
		if err != nil {
			return explain(err)
		}
		if err := plan.PrepareOutDir(outDir); err != nil {
			return err
		}
		words := append([]string{*ffmpeg}, plan.FFmpegArgs(absPath(pos[0]))...)
		for i, w := range words {
			words[i] = shellQuote(w)
		}
		fmt.Fprintln(stdout, strings.Join(words, " "))
		return nil
	}

	start := time.Now()
	progress := func(pct, eta float64) {
		if !*quiet {
			fmt.Fprintf(stderr, "\rencoding %5.1f%%  about %s left   ", pct, time.Duration(eta*float64(time.Second)).Round(time.Second))
		}
	}
	res, err := transcode.Transcode(ctx, cfg, in, outDir, progress)
	if !*quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return explain(err)
	}
	wall := time.Since(start)
	printLadder(stdout, res, wall)
	return nil
}

// explain turns a rejected source into the teacher-readable reason.
func explain(err error) error {
	if transcode.IsRejected(err) {
		return errors.New("cannot transcode: " + transcode.Reason(err))
	}
	return err
}

func printLadder(w io.Writer, res transcode.Result, wall time.Duration) {
	fmt.Fprintf(w, "profile %s, %.1f s of media in %.1f s (%.2fx realtime), %d objects, %.2f MB\n",
		res.Profile, res.DurationSeconds, wall.Seconds(), res.DurationSeconds/wall.Seconds(), len(res.Objects), float64(res.Bytes)/1e6)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rendition\tresolution\tfps\tCRF\tcap kb/s\tpeak kb/s\tavg kb/s\tMB\tcodecs\t")
	row := func(r transcode.Rendition, res string, crf, capKbps string) {
		fps := ""
		if r.FrameRate > 0 {
			fps = fmt.Sprintf("%.3g", r.FrameRate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.2f\t%s\t\n", r.Name, res, fps, crf, capKbps,
			r.Bandwidth/1000, r.AverageBandwidth/1000, float64(r.Bytes)/1e6, r.Codecs)
	}
	for _, r := range res.Renditions {
		if r.Width > 0 {
			row(r, fmt.Sprintf("%dx%d", r.Width, r.Height), fmt.Sprint(r.CRF), fmt.Sprint(r.MaxrateKbps))
		} else {
			row(r, "audio", "", fmt.Sprint(r.Kbps))
		}
	}
	if a := res.Audio; a != nil {
		row(*a, "audio", "", fmt.Sprint(a.Kbps))
	}
	tw.Flush()
	if res.Audio != nil {
		fmt.Fprintln(w, "(video rows include the shared audio rendition in peak/avg, as BANDWIDTH in the master does)")
	}
	if len(res.Chapters) > 0 {
		fmt.Fprintf(w, "%d slide chapters:", len(res.Chapters))
		for _, c := range res.Chapters {
			fmt.Fprintf(w, " %s", time.Duration(c.Start*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	if res.Poster != "" {
		fmt.Fprintln(w, "poster:", res.Poster)
	}
	if res.Captions != "" {
		fmt.Fprintln(w, "captions:", res.Captions)
	}
}

// parseInterspersed parses flags that may come after positional arguments ("INPUT OUTDIR --profile
// motion"), as users type them, and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// shellQuote quotes s for a POSIX shell when it has anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
