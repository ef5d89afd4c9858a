package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/tusclient"
)

// stopAfterEnv is a test hook: the upload stops once this many bytes are on the server and the command
// exits with exitStopped, as if the teacher's laptop had been closed at that byte.
const (
	stopAfterEnv = "LECTERN_UPLOAD_STOP_AFTER"
	exitStopped  = 3
)

// runUpload sends a lecture to a Lectern server over tus, resuming an earlier interrupted run for the
// same file, and with --wait follows the transcode to the end.
func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("upload", "upload [flags] FILE --title TITLE --course COURSE", stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "Lectern server (ingest) base URL")
	token := fs.String("token", "", "teacher API token (`lectern teacher add` prints one)")
	title := fs.String("title", "", "lecture title (required for a new lecture)")
	course := fs.String("course", "", "course the lecture belongs to (required for a new lecture)")
	description := fs.String("description", "", "lecture description")
	profile := fs.String("profile", "", "encoding profile, e.g. lecture or motion (default: the server's)")
	captions := fs.String("captions", "", "WebVTT captions file to attach")
	captionsLang := fs.String("captions-language", "en", "language of --captions (RFC 5646, e.g. en or ko)")
	wait := fs.Bool("wait", false, "after the upload, follow the transcode until the lecture is ready or failed")
	chunk := byteSize(tusclient.DefaultChunkSize)
	fs.Var(&chunk, "chunk-size", "bytes per upload request (0: the whole file in one); a dropped connection loses at most one")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		fmt.Fprintln(stderr, "lectern upload: name one FILE")
		return errUsage
	}
	var stopAfter int64
	if v := os.Getenv(stopAfterEnv); v != "" {
		if stopAfter, err = strconv.ParseInt(v, 10, 64); err != nil || stopAfter <= 0 {
			return fmt.Errorf("%s=%q: want a positive number of bytes", stopAfterEnv, v)
		}
	}

	file := pos[0]
	f, info, err := openUpload(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var vtt []byte
	if *captions != "" {
		if vtt, err = os.ReadFile(*captions); err != nil {
			return fmt.Errorf("captions: %w", err)
		}
	}
	base, err := url.Parse(strings.TrimRight(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("--server %q: want a URL like http://lectern.example.edu", *server)
	}
	statePath, err := defaultStatePath()
	if err != nil {
		return err
	}

	u := &uploader{
		api:    &apiClient{base: base, token: *token, http: uploadHTTPClient()},
		states: uploadStates{path: statePath},
		key:    uploadKey(base.String(), absPath(file), info.Size(), info.ModTime()),
		file:   f,
		size:   info.Size(),
		stderr: stderr,
	}
	u.tus = tusclient.New(u.api.header())
	u.tus.HTTP = u.api.http
	u.tus.ChunkSize = int64(chunk)
	u.tus.StopAfter = stopAfter

	lec, err := u.run(ctx, newLecture{Title: *title, Course: *course, Description: *description, Profile: *profile},
		filepath.Base(file), vtt, *captionsLang, *title != "" && *course != "")
	if errors.Is(err, tusclient.ErrStopped) {
		fmt.Fprintf(stderr, "upload stopped at %d bytes (%s)\n", stopAfter, stopAfterEnv)
		os.Exit(exitStopped) // the test hook's distinct status; the state file already holds the resume point
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lecture %s %s\n", lec.ID, lec.Status)
	if *wait && lec.Status != "ready" && lec.Status != "failed" {
		if lec, err = u.follow(ctx, lec.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lecture %s %s\n", lec.ID, lec.Status)
	}
	if lec.Status == "failed" {
		return fmt.Errorf("lecture %s failed: %s", lec.ID, lec.Error)
	}
	if lec.Status == "ready" {
		fmt.Fprintln(stdout, "watch:   ", u.api.absolute(lec.WatchURL))
		fmt.Fprintln(stdout, "playback:", u.api.absolute(lec.PlaybackURL))
	} else if lec.WatchURL != "" {
		fmt.Fprintln(stdout, "watch:   ", u.api.absolute(lec.WatchURL), "(once transcoded)")
	}
	return nil
}

// openUpload opens FILE and says in a sentence what is wrong when it cannot be uploaded.
func openUpload(name string) (*os.File, os.FileInfo, error) {
	info, err := os.Stat(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil, fmt.Errorf("%s: no such file", name)
	case err != nil:
		return nil, nil, err
	case !info.Mode().IsRegular():
		return nil, nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, info, nil
}

type uploader struct {
	api    *apiClient
	tus    *tusclient.Client
	states uploadStates
	key    string
	file   *os.File
	size   int64
	stderr io.Writer
}

// run brings the file to the server: resumes the upload the state file remembers, else starts one
// (creating the lecture unless the remembered one still waits for its video), and returns the lecture
// as it stands once the server has the whole file.
func (u *uploader) run(ctx context.Context, nl newLecture, filename string, vtt []byte, lang string, canCreate bool) (lectureInfo, error) {
	entry, found, err := u.states.get(u.key)
	if err != nil {
		return lectureInfo{}, err
	}
	offset := int64(0)
	uploadURL := ""
	if found && entry.UploadURL != "" {
		off, length, err := u.tus.Offset(ctx, entry.UploadURL)
		switch {
		case err == nil && length >= 0 && length != u.size:
			fmt.Fprintln(u.stderr, "the unfinished upload on the server is of another size: starting over")
		case err == nil:
			uploadURL, offset = entry.UploadURL, off
			fmt.Fprintf(u.stderr, "resuming at %d%% (%s of %s MiB already on the server)\n", percent(off, u.size), mib(off), mib(u.size))
		case errors.Is(err, tusclient.ErrGone):
			fmt.Fprintln(u.stderr, "the unfinished upload is gone from the server (expired or removed): starting it again")
		default:
			return lectureInfo{}, u.api.explain(err)
		}
	}
	lectureID := entry.LectureID
	if uploadURL == "" && lectureID != "" {
		// The remembered lecture: upload to it again if it still waits for (or rejected) its video; if the
		// file did arrive (the last run died after its final request) there is nothing to send.
		lec, err := u.api.lecture(ctx, lectureID)
		var ae *requestError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			fmt.Fprintf(u.stderr, "lecture %s no longer exists: creating a new one\n", lectureID)
			lectureID = ""
		case err != nil:
			return lectureInfo{}, err
		case lec.Status != "awaiting_upload" && lec.Status != "failed":
			_ = u.states.remove(u.key)
			return lec, nil
		}
	}
	if lectureID == "" {
		if !canCreate {
			return lectureInfo{}, errors.New("--title and --course are required for a new lecture")
		}
		lec, err := u.api.createLecture(ctx, nl)
		if err != nil {
			return lectureInfo{}, err
		}
		lectureID = lec.ID
		fmt.Fprintf(u.stderr, "created lecture %s\n", lectureID)
		if err := u.states.put(u.key, uploadEntry{LectureID: lectureID}); err != nil {
			return lectureInfo{}, err
		}
	}
	if len(vtt) > 0 {
		// Before the video arrives the captions belong to the first version; sent again on a resumed
		// run, they replace the same captions.
		if err := u.api.putCaptions(ctx, lectureID, lang, vtt); err != nil {
			return lectureInfo{}, fmt.Errorf("captions: %w", err)
		}
	}
	if uploadURL == "" {
		uploadURL, err = u.tus.Create(ctx, u.api.url("/api/v1/uploads/"), u.size,
			map[string]string{"lecture": lectureID, "filename": filename})
		if err != nil {
			return lectureInfo{}, u.api.explain(err)
		}
		if err := u.states.put(u.key, uploadEntry{LectureID: lectureID, UploadURL: uploadURL}); err != nil {
			return lectureInfo{}, err
		}
	}

	bar := newProgressBar(u.stderr, isTerminal(u.stderr), u.size, time.Now)
	_, err = u.tus.Upload(ctx, uploadURL, u.file, offset, u.size, func(sent, _ int64) { bar.update(sent) })
	bar.done()
	var te *tusclient.Error
	switch {
	case err == nil:
	case errors.Is(err, tusclient.ErrStopped):
		return lectureInfo{}, err
	case ctx.Err() != nil:
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		off, _, herr := u.tus.Offset(hctx, uploadURL)
		cancel()
		if herr == nil {
			return lectureInfo{}, fmt.Errorf("interrupted at %d%%: run the same command again to resume", percent(off, u.size))
		}
		return lectureInfo{}, errors.New("interrupted: run the same command again to resume")
	case errors.Is(err, tusclient.ErrGone):
		return lectureInfo{}, errors.New("the upload disappeared from the server (expired or removed): run the same command again to start it over")
	case errors.As(err, &te) && te.Status < 500 && te.Status != http.StatusUnauthorized:
		// The server's verdict on the file (422 invalid media, 413 too large): resuming cannot help.
		_ = u.states.remove(u.key)
		msg := te.Message
		if msg == "" {
			msg = te.Error()
		}
		return lectureInfo{}, fmt.Errorf("the server rejected %s: %s", filename, msg)
	default:
		return lectureInfo{}, fmt.Errorf("%w (run the same command again to resume)", u.api.explain(err))
	}
	if err := u.states.remove(u.key); err != nil {
		fmt.Fprintf(u.stderr, "warning: %v\n", err)
	}
	return u.api.lecture(ctx, lectureID)
}

// follow polls the lecture every second until it is ready or failed, drawing its progress: redrawn in
// place on a terminal, else a line when the status changes and at every tenth.
func (u *uploader) follow(ctx context.Context, id string) (lectureInfo, error) {
	tty := isTerminal(u.stderr)
	lastStatus, lastTenth, width, unreachable := "", -1, 0, 0
	defer func() {
		if width > 0 {
			fmt.Fprintln(u.stderr)
		}
	}()
	for {
		lec, err := u.api.lecture(ctx, id)
		var re *requestError
		switch {
		case err == nil:
			unreachable = 0
			if lec.Status == "ready" || lec.Status == "failed" {
				return lec, nil
			}
			line, tenth := formatTranscode(lec.Status, lec.Progress, lec.ETASeconds), int(lec.Progress)/10
			switch {
			case tty:
				fmt.Fprintf(u.stderr, "\r%s%s", line, strings.Repeat(" ", max(0, width-len(line))))
				width = len(line)
			case lec.Status != lastStatus || tenth != lastTenth:
				fmt.Fprintln(u.stderr, line)
			}
			lastStatus, lastTenth = lec.Status, tenth
		case ctx.Err() != nil:
			return lectureInfo{}, ctx.Err()
		case errors.As(err, &re) && re.Status < 500:
			return lectureInfo{}, err
		default:
			// A restarting server: the lecture is safe there, so keep asking for a while.
			if unreachable++; unreachable > 30 {
				return lectureInfo{}, err
			}
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return lectureInfo{}, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func percent(n, total int64) int {
	if total <= 0 {
		return 100
	}
	return int(n * 100 / total)
}

// uploadHTTPClient gives up on a server that cannot be reached, never on a slow transfer: the last
// request of an upload returns only after the server has checked the whole file.
func uploadHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t}
}

// apiClient calls the lecture API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

type newLecture struct {
	Title       string `json:"title"`
	Course      string `json:"course"`
	Description string `json:"description,omitempty"`
	Profile     string `json:"profile,omitempty"`
}

// lectureInfo is the part of the lecture JSON the CLI uses.
type lectureInfo struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Error       string  `json:"error"`
	Version     int     `json:"version"`
	Progress    float64 `json:"progress"`
	ETASeconds  float64 `json:"eta_seconds"`
	PlaybackURL string  `json:"playback_url"`
	WatchURL    string  `json:"watch_url"`
	Captions    bool    `json:"captions"`
}

// requestError is a refusal in the API's one error shape.
type requestError struct {
	Status        int
	Code, Message string
	noToken       bool // none was given
}

func (e *requestError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized && e.noToken:
		return "the server wants a teacher token: pass --token or set LECTERN_TOKEN (`lectern teacher add NAME` prints one)"
	case e.Status == http.StatusUnauthorized:
		return "the server did not accept the token: check --token / LECTERN_TOKEN"
	case e.Message != "":
		return e.Message
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

func (c *apiClient) header() http.Header {
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	return h
}

func (c *apiClient) url(path string) string { return c.base.String() + path }

// absolute resolves a path the API returned (watch_url, playback_url) against the server.
func (c *apiClient) absolute(ref string) string {
	u, err := c.base.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

func (c *apiClient) createLecture(ctx context.Context, nl newLecture) (lectureInfo, error) {
	body, _ := json.Marshal(nl)
	var lec lectureInfo
	err := c.do(ctx, http.MethodPost, "/api/v1/lectures", "application/json", body, http.StatusCreated, &lec)
	if err == nil && lec.ID == "" {
		err = errors.New("the server created a lecture without an id")
	}
	return lec, err
}

func (c *apiClient) putCaptions(ctx context.Context, id, lang string, vtt []byte) error {
	path := "/api/v1/lectures/" + url.PathEscape(id) + "/captions?language=" + url.QueryEscape(lang)
	return c.do(ctx, http.MethodPut, path, "text/vtt", vtt, http.StatusOK, nil)
}

func (c *apiClient) lecture(ctx context.Context, id string) (lectureInfo, error) {
	var lec lectureInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/lectures/"+url.PathEscape(id), "", nil, http.StatusOK, &lec)
	return lec, err
}

func (c *apiClient) do(ctx context.Context, method, path, contentType string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = c.header()
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.explain(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		e := &requestError{Status: resp.StatusCode, noToken: c.token == ""}
		var j struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &j) == nil {
			e.Code, e.Message = j.Error.Code, j.Error.Message
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return nil
}

// explain turns a transport failure or a tus refusal into what the teacher should do about it.
func (c *apiClient) explain(err error) error {
	var te *tusclient.Error
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &te) && te.Status == http.StatusUnauthorized:
		return &requestError{Status: te.Status, noToken: c.token == ""}
	case errors.As(err, &te):
		return err
	case errors.As(err, &oe) && oe.Op == "dial":
		return fmt.Errorf("cannot reach the Lectern server at %s (check --server / LECTERN_SERVER): %v", c.base, oe)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("the Lectern server at %s does not answer (check --server / LECTERN_SERVER): %v", c.base, err)
	}
	return err
}
