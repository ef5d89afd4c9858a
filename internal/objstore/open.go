package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// urlHelp is appended to every URL error so the operator sees what a valid value looks like.
const urlHelp = "valid storage URLs: file:///abs/path (or a bare path), " +
	"s3://bucket?endpoint=host:port&region=us-east-1&secure=true&access_key=...&secret_key=...&create=true&timeout=10s&attempts=10"

// Open returns a Bucket for rawURL; see the package documentation for the schemes. It checks that the
// storage is usable before returning (the directory is writable, the S3 bucket exists or was created),
// so a misconfigured deployment fails at start-up rather than on the first upload.
func Open(ctx context.Context, rawURL string) (*Bucket, error) {
	rawURL = strings.TrimSpace(rawURL)
	if rawURL == "" {
		return nil, fmt.Errorf("objstore: empty storage URL; %s", urlHelp)
	}
	if !strings.Contains(rawURL, "://") {
		root, err := filepath.Abs(rawURL)
		if err != nil {
			return nil, fmt.Errorf("objstore: storage path %q: %w", rawURL, err)
		}
		return openFile(root)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, secret_key included; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("objstore: cannot parse storage URL: %v; %s", err, urlHelp)
	}
	switch u.Scheme {
	case "file":
		root, err := parseFileURL(u)
		if err != nil {
			return nil, err
		}
		return openFile(root)
	case "s3":
		cfg, err := parseS3URL(u, os.Getenv)
		if err != nil {
			return nil, err
		}
		d, err := openS3(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return NewBucket(d), nil
	default:
		return nil, fmt.Errorf("objstore: unsupported storage URL scheme %q; %s", u.Scheme, urlHelp)
	}
}

func openFile(root string) (*Bucket, error) {
	d, err := newFileDriver(root)
	if err != nil {
		return nil, err
	}
	return NewBucket(d), nil
}

func parseFileURL(u *url.URL) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("objstore: file URL has host %q (write three slashes for an absolute path: file:///data/objects); %s",
			u.Host, urlHelp)
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("objstore: file URL takes no query parameters; %s", urlHelp)
	}
	if u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
		return "", fmt.Errorf("objstore: file URL needs an absolute path; %s", urlHelp)
	}
	return filepath.Clean(filepath.FromSlash(u.Path)), nil
}
