package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// uploadStates is the CLI's memory of unfinished uploads: a JSON file mapping one file as it was when its
// upload started (server, absolute path, size, modification time) to its lecture and tus upload URL, so
// running `lectern upload` again for the same file continues where the last run stopped. An edited file
// has another size or mtime and starts over. Concurrent `lectern upload` runs (one per terminal) update
// the file under a lock file, so none loses another's entry.
type uploadStates struct {
	path string
}

type uploadEntry struct {
	LectureID string    `json:"lecture_id"`
	UploadURL string    `json:"upload_url,omitempty"` // empty between creating the lecture and the upload
	Updated   time.Time `json:"updated"`
}

// stateMaxAge drops entries nobody came back to: the server expires their uploads long before.
const stateMaxAge = 30 * 24 * time.Hour

// defaultStatePath is $LECTERN_STATE_DIR/uploads.json, else $XDG_STATE_HOME/lectern/uploads.json, else
// ~/.local/state/lectern/uploads.json.
func defaultStatePath() (string, error) {
	if d := os.Getenv("LECTERN_STATE_DIR"); d != "" {
		return filepath.Join(d, "uploads.json"), nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "lectern", "uploads.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no place for the resume state (set LECTERN_STATE_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "state", "lectern", "uploads.json"), nil
}

// uploadKey names a file as it is now on one server.
func uploadKey(server, absPath string, size int64, mtime time.Time) string {
	return fmt.Sprintf("%s %d %d %s", strings.TrimRight(server, "/"), size, mtime.UnixNano(), absPath)
}

func (s uploadStates) get(key string) (uploadEntry, bool, error) {
	m, err := s.read()
	if err != nil {
		return uploadEntry{}, false, err
	}
	e, ok := m[key]
	return e, ok, nil
}

func (s uploadStates) put(key string, e uploadEntry) error {
	return s.update(func(m map[string]uploadEntry) {
		e.Updated = time.Now().UTC()
		m[key] = e
	})
}

func (s uploadStates) remove(key string) error {
	return s.update(func(m map[string]uploadEntry) { delete(m, key) })
}

func (s uploadStates) read() (map[string]uploadEntry, error) {
	m := map[string]uploadEntry{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("resume state %s is damaged (delete it to start over): %w", s.path, err)
		}
	}
	return m, nil
}

// update rewrites the file under the lock: read, change, write a temporary file, rename over.
func (s uploadStates) update(change func(map[string]uploadEntry)) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	m, err := s.read()
	if err != nil {
		return err
	}
	change(m)
	for k, e := range m {
		if time.Since(e.Updated) > stateMaxAge {
			delete(m, k)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".uploads-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}

// lockFile takes a lock that works on every OS: creating the file exclusively. A lock older than 10 s
// belongs to a process that died holding it (the critical section is a few milliseconds).
func lockFile(path string) (unlock func(), err error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > 10*time.Second {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("resume state is locked by another lectern upload (%s)", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
