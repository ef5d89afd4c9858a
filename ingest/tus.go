package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/filelocker"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	xslog "golang.org/x/exp/slog"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/probe"
)

// UploadsPath is where the tus endpoint is mounted. Upload URLs are UploadsPath + "{lecture}/{random}".
const UploadsPath = "/api/v1/uploads/"

// tus is the resumable-upload side of the service: tusd's protocol handler, wrapped with Lectern's
// authentication, ownership, expiry and the JSON error shape, and the step that turns a finished upload
// into a queued lecture.
type tus struct {
	s       *Service
	h       *tusd.UnroutedHandler
	store   uploadStore
	handler http.Handler
	// finishing serialises the finish step per upload within this process (the tus lock already
	// does across processes for PATCH; start-up recovery takes this one too).
	finishing sync.Map
	pgLocks   *pgLocker // nil unless the catalog is PostgreSQL
}

func (s *Service) newTus() (*tus, error) {
	t := &tus{s: s}
	var err error
	composer := tusd.NewStoreComposer()
	if cfg, ok := s.cfg.Store.S3(); ok {
		t.store = newS3Uploads(cfg, s.cfg.Store, s.cfg.TempDir)
	} else {
		dir := s.cfg.UploadDir
		if dir == "" {
			var local bool
			dir, local, err = s.cfg.Store.LocalDir("uploads")
			if err != nil {
				return nil, err
			}
			if !local {
				return nil, errors.New("ingest: no upload directory: set UploadDir")
			}
		}
		var fu *fileUploads
		if fu, err = newFileUploads(dir, s.cfg.Store); err != nil {
			return nil, err
		}
		t.store = fu
	}
	t.store.compose(composer)
	// Uploads must declare their length up front (the size limit and the progress shown to the teacher
	// need it), so tusd should not advertise creation-defer-length.
	composer.UsesLengthDeferrer = false
	if s.cfg.Locks != nil {
		// Several ingest instances on one PostgreSQL catalog: PostgreSQL advisory locks.
		t.pgLocks = newPGLocker(s.cfg.Locks, s.log)
		t.pgLocks.UseIn(composer)
	} else {
		// One machine (SQLite): lock files, which every process on the machine sees.
		dir := s.cfg.TempDir + "/lectern-upload-locks"
		if fu, ok := t.store.(*fileUploads); ok {
			dir = fu.dir
		}
		composer.UseLocker(dirLocker{filelocker.New(dir)})
	}
	h, err := tusd.NewUnroutedHandler(tusd.Config{
		StoreComposer:             composer,
		BasePath:                  UploadsPath,
		MaxSize:                   s.cfg.MaxUploadBytes,
		DisableDownload:           true,
		DisableConcatenation:      true,
		Cors:                      &tusd.CorsConfig{Disable: true}, // the teacher page is same-origin
		PreUploadCreateCallback:   t.preCreate,
		PreFinishResponseCallback: t.preFinish,
		// tusd logs every request at info through x/exp/slog; its warnings and errors are enough.
		Logger:                  xslog.New(xslog.NewTextHandler(os.Stderr, &xslog.HandlerOptions{Level: xslog.LevelWarn})),
		RespectForwardedHeaders: s.cfg.TrustForwardedHeaders,
		AcquireLockTimeout:      s.cfg.LockTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: tus handler: %w", err)
	}
	t.h = h
	t.handler = t.h.Middleware(http.HandlerFunc(t.route))
	return t, nil
}

// route dispatches a tus request (path already relative to UploadsPath) to tusd.
func (t *tus) route(w http.ResponseWriter, r *http.Request) {
	id := strings.Trim(r.URL.Path, "/")
	switch {
	case id == "" && r.Method == http.MethodPost:
		t.h.PostFile(w, r)
	case id == "":
		w.Header().Set("Allow", "POST, OPTIONS")
		t.s.writeJSONError(w, apiError(405, "method_not_allowed", "create an upload with POST %s", UploadsPath))
	case r.Method == http.MethodHead:
		t.h.HeadFile(w, r)
	case r.Method == http.MethodPatch:
		t.h.PatchFile(w, r)
	case r.Method == http.MethodDelete:
		t.h.DelFile(w, r)
	default:
		w.Header().Set("Allow", "HEAD, PATCH, DELETE, OPTIONS")
		t.s.writeJSONError(w, apiError(405, "method_not_allowed", "%s is not part of the tus protocol for an upload", r.Method))
	}
}

type teacherCtxKey struct{}

// ServeHTTP authenticates, checks that an existing upload is the teacher's and not expired, then hands
// the request to tusd. tusd's plain-text errors are rewritten into the API's JSON shape.
func (t *tus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Logged like the gin routes (logRequests), which tus requests do not pass through.
	start, sw := time.Now(), &statusWriter{ResponseWriter: w}
	w = sw
	defer func(method, path string) {
		t.s.log.Debug("request", "method", method, "path", path, "status", sw.status, "dur", time.Since(start))
	}(r.Method, r.URL.Path)
	if r.URL.Path == strings.TrimSuffix(UploadsPath, "/") {
		r.URL.Path = "/"
	} else {
		r.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, UploadsPath)
	}
	r.URL.RawPath = ""
	if r.Method == http.MethodOptions {
		// Protocol discovery needs no token. Expiry is Lectern's own (tusd has none): say so.
		t.handler.ServeHTTP(extensionWriter{w}, r)
		return
	}
	teacher, aerr := t.s.authenticate(r)
	if aerr != nil {
		t.s.writeJSONError(w, aerr)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), teacherCtxKey{}, teacher))
	jw := &jsonErrorWriter{ResponseWriter: w}
	defer jw.finish()
	id := strings.Trim(r.URL.Path, "/")
	if id == "" {
		if r.Method != http.MethodPost {
			t.handler.ServeHTTP(jw, r)
			return
		}
		jw.expires = time.Now().Add(t.s.cfg.UploadTTL)
		t.handler.ServeHTTP(jw, r)
		if jw.status == http.StatusCreated {
			t.s.stats.UploadsStarted.Add(1)
			loc := w.Header().Get("Location")
			if i := strings.Index(loc, UploadsPath); i >= 0 {
				tusID := loc[i+len(UploadsPath):]
				if err := t.s.cfg.Catalog.SetUploadTusID(context.WithoutCancel(r.Context()), objectID(tusID), tusID); err != nil {
					t.s.log.Warn("record upload id", "upload", tusID, "err", err)
				}
			}
		}
		return
	}
	up, err := t.s.cfg.Catalog.GetUpload(r.Context(), objectID(id))
	if catalog.IsNotFound(err) || (err == nil && up.TeacherID != teacher.ID) {
		t.s.writeJSONError(w, apiError(404, "upload_not_found", "no upload %q among yours: start a new upload", id))
		return
	}
	if err != nil {
		t.s.logError(r, err)
		t.s.writeJSONError(w, apiError(500, "internal", "internal error; the server log has details"))
		return
	}
	switch {
	case up.State == catalog.UploadCancelled:
		t.s.writeJSONError(w, apiError(404, "upload_not_found", "upload %q was cancelled: start a new upload", id))
		return
	case up.State == catalog.UploadExpired || (up.State == catalog.UploadReceiving && time.Now().After(up.ExpiresAt)):
		t.s.writeJSONError(w, apiError(410, "upload_expired", "this upload was abandoned for more than %s and deleted: upload the file again", t.s.cfg.UploadTTL))
		return
	case up.State == catalog.UploadRejected:
		t.s.writeJSONError(w, apiError(410, "upload_rejected", "this upload was rejected: %s", up.Error))
		return
	case up.State == catalog.UploadDone && r.Method == http.MethodHead:
		// The bytes have moved to the source object; a client that lost the last response learns
		// here that it is complete, instead of starting over.
		h := w.Header()
		h.Set("Tus-Resumable", "1.0.0")
		h.Set("Upload-Offset", strconv.FormatInt(up.Size, 10))
		h.Set("Upload-Length", strconv.FormatInt(up.Size, 10))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	case up.State == catalog.UploadDone:
		t.s.writeJSONError(w, apiError(409, "upload_complete", "this upload is complete; nothing more can be sent to it"))
		return
	}
	if r.Method == http.MethodPatch {
		jw.expires = time.Now().Add(t.s.cfg.UploadTTL)
		r.Body = &countingBody{ReadCloser: r.Body, n: &t.s.stats.BytesReceived}
	}
	t.handler.ServeHTTP(jw, r)
	if r.Method == http.MethodDelete && jw.status < 300 {
		if err := t.s.cfg.Catalog.EndUpload(context.WithoutCancel(r.Context()), up.ID, catalog.UploadCancelled, "terminated by the client"); err == nil {
			t.s.stats.UploadsCancelled.Add(1)
		}
	}
	if r.Method == http.MethodPatch && jw.status < 300 {
		// Refresh the expiry; a finished upload is no longer receiving, which is fine.
		if err := t.s.cfg.Catalog.TouchUpload(context.WithoutCancel(r.Context()), up.ID, jw.expires); err != nil && !catalog.IsConflict(err) {
			t.s.log.Warn("touch upload", "upload", up.ID, "err", err)
		}
	}
}

// storeID is the id under which the tus store knows an upload.
func (t *tus) storeID(up catalog.Upload) string {
	if up.TusID != "" {
		return up.TusID
	}
	return up.ID
}

// preCreate runs before tusd creates an upload: it checks the lecture named in the metadata belongs to
// the teacher, picks the upload id "{lecture}/{random}" and records the upload.
func (t *tus) preCreate(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	teacher, _ := ev.Context.Value(teacherCtxKey{}).(catalog.Teacher)
	lectureID := strings.TrimSpace(ev.Upload.MetaData["lecture"])
	if lectureID == "" {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(apiError(400, "missing_lecture",
			"Upload-Metadata needs \"lecture\" (base64 of a lecture id): create the lecture first with POST /api/v1/lectures"))
	}
	id := lectureID + "/" + randomID()
	_, err := t.s.cfg.Catalog.CreateUpload(ev.Context, catalog.Upload{
		ID: id, LectureID: lectureID, TeacherID: teacher.ID, Size: ev.Upload.Size,
		Filename: truncate(ev.Upload.MetaData["filename"], 255), ExpiresAt: time.Now().Add(t.s.cfg.UploadTTL),
	})
	if catalog.IsNotFound(err) {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(apiError(404, "not_found", "no lecture %q among your lectures", lectureID))
	}
	if err != nil {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, err
	}
	meta := tusd.MetaData{"lecture": lectureID}
	if fn := ev.Upload.MetaData["filename"]; fn != "" {
		meta["filename"] = truncate(fn, 255)
	}
	return tusd.HTTPResponse{}, tusd.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// preFinish runs once the last byte is stored, before the final response: the upload is validated and
// the lecture queued, so the response says whether the file was accepted.
func (t *tus) preFinish(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	ctx := context.WithoutCancel(ev.Context) // a client that hangs up now must not half-finish it
	if err := t.finish(ctx, ev.Upload.ID); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return tusd.HTTPResponse{}, tusError(e)
		}
		return tusd.HTTPResponse{}, err
	}
	return tusd.HTTPResponse{}, nil
}

// finish validates a complete upload. Valid: the bytes become sources/{id} and the lecture is queued,
// and the upload marked done, in one transaction. Invalid: the bytes are deleted, the upload and the
// lecture say why, and an *Error (422) is returned. Finishing an upload that is no longer receiving
// does nothing, so a retried final PATCH and start-up recovery cannot both act.
func (t *tus) finish(ctx context.Context, tusID string) error {
	id := objectID(tusID)
	var mu *sync.Mutex
	for {
		m, _ := t.finishing.LoadOrStore(id, &sync.Mutex{})
		mu = m.(*sync.Mutex)
		mu.Lock()
		if cur, ok := t.finishing.Load(id); ok && cur == m {
			break
		}
		mu.Unlock() // its holder finished and removed it meanwhile: take the current one
	}
	defer func() {
		t.finishing.CompareAndDelete(id, mu)
		mu.Unlock()
	}()
	up, err := t.s.cfg.Catalog.GetUpload(ctx, id)
	if err != nil {
		return err
	}
	if up.State != catalog.UploadReceiving {
		if up.State == catalog.UploadRejected {
			return apiError(422, "invalid_media", "%s", up.Error)
		}
		return nil
	}
	info, reason, err := t.validate(ctx, tusID, up)
	if err != nil {
		return err
	}
	if reason != "" {
		return t.reject(ctx, tusID, up, reason)
	}
	key, err := t.store.keep(ctx, tusID)
	if err != nil {
		return fmt.Errorf("ingest: keep upload %s: %w", id, err)
	}
	l, err := t.s.cfg.Catalog.GetLecture(ctx, up.LectureID)
	if err != nil {
		return err
	}
	_, err = t.s.cfg.Catalog.EnqueueTranscode(ctx, up.LectureID, catalog.Source{
		Key: key, CaptionsKey: l.CaptionsKey, CaptionsLanguage: l.CaptionsLanguage,
		Seconds: info.DurationSeconds, UploadID: id,
	})
	if catalog.IsConflict(err) {
		return nil // someone else finished it first
	}
	if err != nil {
		return fmt.Errorf("ingest: queue transcode: %w", err)
	}
	t.s.stats.UploadsCompleted.Add(1)
	t.s.stats.AcceptedBytes.Add(up.Size)
	t.s.uploadSeconds.Observe(time.Since(up.CreatedAt).Seconds())
	t.s.log.Info("upload complete", "lecture", up.LectureID, "upload", id, "bytes", up.Size,
		"seconds", time.Since(up.CreatedAt).Round(time.Millisecond).Seconds())
	return nil
}

// validate probes the finished upload: reason != "" says what is wrong with the file for the teacher.
func (t *tus) validate(ctx context.Context, tusID string, up catalog.Upload) (probe.Result, string, error) {
	if up.Size == 0 {
		return probe.Result{}, "the file is empty (0 bytes): choose a video or audio file", nil
	}
	src, err := t.store.probeSource(ctx, tusID)
	if err != nil {
		return probe.Result{}, "", err
	}
	info, err := probe.Probe(ctx, t.s.cfg.FFprobe, src)
	if err == nil {
		err = probe.CheckComplete(ctx, t.s.cfg.FFprobe, src, info)
	}
	if probe.IsInvalidMedia(err) {
		return info, probe.Reason(err) + ": upload a video (e.g. MP4, MOV, MKV, WebM) or an audio file", nil
	}
	if err != nil {
		return info, "", err
	}
	if max := t.s.cfg.MaxDuration; max > 0 && info.DurationSeconds > max.Seconds() {
		return info, fmt.Sprintf("the lecture is %s long; the limit is %s: split it into parts",
			probe.FormatDuration(info.DurationSeconds), probe.FormatDuration(max.Seconds())), nil
	}
	return info, "", nil
}

// reject deletes the upload's bytes and records why on the upload and on the lecture.
func (t *tus) reject(ctx context.Context, tusID string, up catalog.Upload, reason string) error {
	if err := t.store.discard(ctx, tusID); err != nil {
		t.s.log.Warn("delete rejected upload", "upload", up.ID, "err", err)
	}
	if err := t.s.cfg.Catalog.EndUpload(ctx, up.ID, catalog.UploadRejected, reason); err != nil && !catalog.IsConflict(err) {
		return err
	}
	if err := t.s.cfg.Catalog.RejectUpload(ctx, up.LectureID, reason); err != nil && !catalog.IsNotFound(err) {
		return err
	}
	t.s.stats.UploadsRejected.Add(1)
	t.s.log.Info("upload rejected", "lecture", up.LectureID, "upload", up.ID, "reason", reason)
	return apiError(422, "invalid_media", "%s", reason)
}

// tusError turns an API error into the error tusd sends; jsonErrorWriter gives it the JSON shape.
func tusError(e *Error) error {
	return tusd.NewError(e.Code, e.Message, e.Status)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// countingBody counts PATCH bytes as they arrive, for the bytes-received counter.
type countingBody struct {
	io.ReadCloser
	n interface{ Add(int64) int64 }
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// jsonErrorWriter adds Upload-Expires to successful creation and PATCH responses and rewrites tusd's
// plain-text errors ("ERR_CODE: message") into {"error":{"code","message"}}.
type jsonErrorWriter struct {
	http.ResponseWriter
	status  int
	expires time.Time
	errBody *bytes.Buffer
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	h := w.Header()
	if code >= 400 && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		w.errBody = &bytes.Buffer{}
		return // written by finish
	}
	if code < 300 && !w.expires.IsZero() {
		h.Set("Upload-Expires", w.expires.UTC().Format(http.TimeFormat))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.errBody != nil {
		if w.errBody.Len() < 4096 {
			w.errBody.Write(p)
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets tusd's http.ResponseController reach the connection (read deadlines, flushing).
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *jsonErrorWriter) finish() {
	if w.errBody == nil {
		return
	}
	code, msg, ok := strings.Cut(strings.TrimSpace(w.errBody.String()), ": ")
	if !ok {
		code, msg = "upload_error", strings.TrimSpace(w.errBody.String())
	}
	code = strings.ToLower(strings.TrimPrefix(code, "ERR_"))
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": msg}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}

// dirLocker creates the lecture directory a lock file goes in: upload ids have a "{lecture}/" part,
// and tusd's filelocker reports a missing directory as a missing upload (404).
type dirLocker struct{ filelocker.FileLocker }

func (d dirLocker) NewLock(id string) (tusd.Lock, error) {
	if err := os.MkdirAll(filepath.Dir(filepath.Join(d.Path, filepath.FromSlash(id))), 0o755); err != nil {
		return nil, err
	}
	return d.FileLocker.NewLock(id)
}

// extensionWriter adds "expiration" to the Tus-Extension tusd advertises.
type extensionWriter struct{ http.ResponseWriter }

func (w extensionWriter) WriteHeader(code int) {
	if ext := w.Header().Get("Tus-Extension"); ext != "" && !strings.Contains(ext, "expiration") {
		w.Header().Set("Tus-Extension", ext+",expiration")
	}
	w.ResponseWriter.WriteHeader(code)
}

// statusWriter remembers the status sent, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets tusd's http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
