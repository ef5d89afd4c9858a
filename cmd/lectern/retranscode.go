package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/transcode"
)

// runRetranscode queues a new version of lectures from their stored sources: after the ladder or the
// profiles change, or to move a lecture to another profile. Each lecture's current version keeps
// playing until the new one is published.
func runRetranscode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("retranscode", "retranscode [flags] LECTURE_ID...", stderr)
	db := fs.String("db", "sqlite://./data/lectern.db", "catalog database URL")
	profiles := transcode.ProfileNames(transcode.DefaultProfiles())
	profile := fs.String("profile", "", "encoding profile for the new version: "+strings.Join(profiles, " or ")+" (default: keep each lecture's)")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(ids) == 0 {
		fs.Usage()
		fmt.Fprintln(stderr, "lectern retranscode: name at least one LECTURE_ID")
		return errUsage
	}
	if *profile != "" && !slices.Contains(profiles, *profile) {
		return fmt.Errorf("unknown profile %q (choose one of %s)", *profile, strings.Join(profiles, ", "))
	}
	cat, err := openCatalog(ctx, *db, catalog.Options{})
	if err != nil {
		return err
	}
	defer cat.Close()
	var failed []string
	for _, id := range ids {
		v, err := cat.Retranscode(ctx, id, *profile)
		switch {
		case err == nil:
			fmt.Fprintf(stdout, "%s: v%d queued\n", id, v)
			continue
		case catalog.IsNotFound(err):
			fmt.Fprintf(stderr, "%s: no such lecture\n", id)
		case catalog.IsConflict(err):
			fmt.Fprintf(stderr, "%s: nothing uploaded yet\n", id)
		default:
			return err // the database, not the lecture: stop here
		}
		failed = append(failed, id)
	}
	if len(failed) > 0 {
		return errors.New("not queued: " + strings.Join(failed, ", "))
	}
	return nil
}
