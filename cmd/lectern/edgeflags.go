package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/ingest"
	"github.com/lectern/lectern/internal/playtoken"
)

// playbackFlags are the signed-playback settings: edges verify with the keys, ingest mints with them.
type playbackFlags struct {
	keys string
	ttl  time.Duration
}

// register adds --playback-keys, and --playback-ttl when this role mints playback URLs.
func (f *playbackFlags) register(fs *flag.FlagSet, mints bool) {
	fs.StringVar(&f.keys, "playback-keys", "", "sign playback URLs: KEYID:SECRET[,KEYID:SECRET...], secrets base64 or hex of >= 16 bytes; the first signs, all verify (give every edge and ingest the same; prefer the environment variable). Empty: unsigned /hls/ URLs")
	if mints {
		fs.DurationVar(&f.ttl, "playback-ttl", 6*time.Hour, "how long a signed playback URL works")
	}
}

func (f *playbackFlags) parse() (playtoken.Keys, error) {
	keys, err := playtoken.ParseKeys(f.keys)
	if err != nil {
		return nil, fmt.Errorf("--playback-keys: %v", err)
	}
	if f.ttl < 0 {
		return nil, fmt.Errorf("--playback-ttl %v: must be positive", f.ttl)
	}
	return keys, nil
}

// purgeFlags say how ingest reaches the edges' purge endpoint, and edges what secret it must send.
type purgeFlags struct {
	edges, secret string
}

// register adds --purge-secret, and --purge-edges for a role that tells remote edges to purge.
func (f *purgeFlags) register(fs *flag.FlagSet, tellsEdges bool) {
	if tellsEdges {
		fs.StringVar(&f.edges, "purge-edges", "", "edges to purge when a lecture is deleted or replaced: URL[,URL...], e.g. http://edge-1:8082")
		fs.StringVar(&f.secret, "purge-secret", "", "bearer secret the edges' --purge-secret expects (prefer the environment variable)")
		return
	}
	fs.StringVar(&f.secret, "purge-secret", "", "accept POST "+cdn.PurgePath+" with this bearer secret, from ingest's --purge-edges (prefer the environment variable). Empty: no purge endpoint")
}

// purger returns the purger for --purge-edges, or nil when none are given.
func (f *purgeFlags) purger() (ingest.Purger, error) {
	var edges []string
	for e := range strings.SplitSeq(f.edges, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--purge-edges: %q is not an edge URL like http://edge-1:8082", e)
		}
		edges = append(edges, e)
	}
	if len(edges) == 0 {
		return nil, nil
	}
	if f.secret == "" {
		return nil, errors.New("--purge-edges needs --purge-secret (or LECTERN_PURGE_SECRET), the secret the edges were given")
	}
	return cdn.HTTPPurger{Edges: edges, Secret: f.secret, Client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}
