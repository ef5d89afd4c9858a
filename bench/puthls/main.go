// Command puthls publishes a local HLS tree to object storage the way the transcoder does: every file
// under DIR goes to PREFIX/relative/path with objstore's PutFile, with the content type and Cache-Control
// of transcode/publish.go (putOptions, which is unexported: the table below mirrors it), media first,
// then media playlists, then the master. bench/origin-hit.sh uses it to lay out the lecture the origin
// serves, so the objects and their metadata sidecars are exactly what a transcode would have stored.
//
//	go run ./bench/puthls -storage file:///tmp/root -prefix hls/LECTURE/v1 DIR
//
// It prints one line per object: bytes and key.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/transcode"
)

func main() {
	storage := flag.String("storage", "", "object storage URL, e.g. file:///abs/path")
	prefix := flag.String("prefix", "", "key prefix, e.g. hls/LECTURE/v1")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: puthls -storage URL -prefix hls/LECTURE/v1 DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *storage == "" || *prefix == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*storage, strings.Trim(*prefix, "/"), flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "puthls:", err)
		os.Exit(1)
	}
}

func run(storage, prefix, dir string) error {
	ctx := context.Background()
	store, err := objstore.Open(ctx, storage)
	if err != nil {
		return err
	}
	defer store.Close()
	var names []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(names, func(a, b string) int { return transcode.PublishStage(a) - transcode.PublishStage(b) })
	for _, name := range names {
		file := filepath.Join(dir, filepath.FromSlash(name))
		key := path.Join(prefix, name)
		if err := store.PutFile(ctx, key, file, transcode.ObjectOptions(name)); err != nil {
			return err
		}
		fi, err := os.Stat(file)
		if err != nil {
			return err
		}
		fmt.Printf("%d %s\n", fi.Size(), key)
	}
	return nil
}
