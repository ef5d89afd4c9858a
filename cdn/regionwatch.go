package cdn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// WatchRegionMap follows edits to the region map file at path until ctx is done. Every interval it
// reads the file, and when the content differs from the last it saw (at first, cur's: the map in use,
// as LoadRegionMap read it), it checks it and calls apply with the new map. An edit that does not
// parse (still so at the next read: the first may have caught the file mid-write), or that apply
// refuses, is logged once and changes nothing: the map in use stays until the next good edit. So is
// a file that cannot be read. Polling the content, rather than watching the file for events, also
// follows a Kubernetes ConfigMap update (a symlink swapped in the mounted directory) and editors
// that write a new file and rename it over the old, which a watch on the old file misses.
//
// edits, when not nil, counts the edits applied and refused (a file that does not parse counts as
// refused once, when it is logged).
func WatchRegionMap(ctx context.Context, path string, cur *RegionMap, interval time.Duration, log *slog.Logger,
	edits *RegionMapEdits, apply func(*RegionMap) error) {
	seen := cur.sum
	var unparsed [sha256.Size]byte // content that did not parse, seen once
	var readErr string             // the last read failure logged, so that a missing file is not logged every interval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		data, err := readRegionFile(path)
		if err != nil {
			if err.Error() != readErr {
				readErr = err.Error()
				log.Error("region map unreadable; the map in use stays", slog.String("file", path), slog.Any("err", err))
			}
			continue
		}
		readErr = ""
		sum := sha256.Sum256(data)
		if sum == seen {
			continue
		}
		m, err := ParseRegionMap(data)
		if err != nil && sum != unparsed {
			// Perhaps read halfway through a write: judged at the next read. (No prefix of a JSON
			// object parses, so a file read mid-write is never taken for a good edit.)
			unparsed = sum
			continue
		}
		seen = sum
		if err == nil {
			err = apply(m)
		}
		if err != nil {
			log.Error("region map edit refused; the map in use stays", slog.String("file", path), slog.Any("err", err))
			if edits != nil {
				edits.Refused.Add(1)
			}
			continue
		}
		log.Info("region map edit applied", slog.String("file", path))
		if edits != nil {
			edits.Applied.Add(1)
		}
	}
}

// RegionMapEdits counts the edits of a followed region map file: applied, and refused (the file did
// not parse, or the edit was not valid for the edge or router following it).
type RegionMapEdits struct {
	Applied, Refused atomic.Int64
}

// FollowRegionMap keeps the edge's peer group (Config.Peers and Config.DrainingPeers) that of region
// in the region map file at path, as edits to the file come, until ctx is done (see WatchRegionMap;
// cur is the map the edge was configured from). An edit that drops the region, or this edge from it,
// is refused like a bad one: drain the edge instead, then stop it. It fails at once on an edge
// without a peer group.
func (e *Edge) FollowRegionMap(ctx context.Context, path, region string, cur *RegionMap, interval time.Duration) error {
	if e.peers == nil {
		return errors.New("cdn: FollowRegionMap on an edge without a peer group (Config.Peers)")
	}
	WatchRegionMap(ctx, path, cur, interval, e.log, &e.stats.RegionMapEdits, func(m *RegionMap) error {
		r := m.Region(region)
		if r == nil {
			return fmt.Errorf("this edge's region %q is not in it (its regions are %s)", region, shortList(m.Names()))
		}
		peers, draining, err := r.PeerGroup(e.peers.self)
		if err != nil {
			return fmt.Errorf("this edge: %w", err)
		}
		return e.SetPeers(peers, draining)
	})
	return nil
}
