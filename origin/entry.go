package origin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"golang.org/x/sync/singleflight"
)

// The unversioned entry point /hls/{lecture}/master.m3u8 redirects to the newest published version's
// master playlist. It is the only answer that changes when a lecture is replaced, so it is the only
// short-lived one: browsers keep it a few seconds, edges (which ingest purges on replace) half a
// minute, both may serve it stale while they revalidate.
const (
	entryName = "master.m3u8"
	// entryTTL is how long the origin itself remembers the answer.
	entryTTL = 5 * time.Second
)

var (
	entryCC        = []string{"public, max-age=5, stale-while-revalidate=30"}
	entryCDNCC     = []string{"public, max-age=30, stale-while-revalidate=60"}
	entryPrivateCC = []string{"private, max-age=5"}
)

// entryPoint reports whether p is /hls/{lecture}/master.m3u8 and returns the lecture.
func entryPoint(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, hlsPrefix)
	if !ok || len(p) > maxKeyLen+1 {
		return "", false
	}
	lecture, name, ok := strings.Cut(rest, "/")
	return lecture, ok && name == entryName && isLectureID(lecture)
}

// entryGroup collapses concurrent lookups of one lecture's newest version.
type entryGroup struct{ g singleflight.Group }

func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request, lecture string, private bool) result {
	key := "hls/" + lecture + "/" + entryName
	label := "hit"
	o, ok := s.hot.get(key, s.now())
	if ok {
		s.stats.HotHits.Add(1)
	} else {
		s.stats.HotMisses.Add(1)
		label = "miss"
		gen := s.purge.Current()
		v, err, shared := s.entries.g.Do(lecture, func() (any, error) { return s.resolveEntry(key, lecture, gen) })
		if shared {
			s.stats.Collapsed.Add(1)
			label = "collapsed"
		}
		if err != nil {
			res := s.storageFailed(w, r, key, err)
			res.label = label
			return res
		}
		o = v.(*object)
	}
	var res result
	if o.missing {
		res = s.notFound(w, r)
	} else {
		h := w.Header()
		if private {
			h["Cache-Control"] = entryPrivateCC
		} else {
			h["Cache-Control"] = entryCC
			h["Cdn-Cache-Control"] = entryCDNCC
		}
		h.Set("Location", o.location)
		res = textResult(writeText(w, r, http.StatusFound, o.location+"\n"))
	}
	res.label = label
	return res
}

// resolveEntry finds the newest version of lecture with a master playlist and remembers the answer
// (a redirect, or a miss) for entryTTL. Publishing uploads the master last, so a version whose
// master exists is complete.
func (s *Server) resolveEntry(key, lecture string, gen uint64) (*object, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.storageTTL)
	defer cancel()
	release, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	objs, err := s.list(ctx, "hls/"+lecture+"/v")
	if err != nil {
		return nil, err
	}
	until := s.now().Add(entryTTL)
	n := newestVersion(objs, "hls/"+lecture+"/")
	if n == 0 {
		o := missingObject(key, s.now().Add(negativeTTL))
		s.remember(key, o, gen)
		return o, nil
	}
	o := redirectObject(key, "v"+strconv.Itoa(n)+"/"+entryName, until)
	s.remember(key, o, gen)
	return o, nil
}

// newestVersion returns the highest n for which prefix+"v{n}/master.m3u8" is among objs, or 0.
func newestVersion(objs []objstore.Attrs, prefix string) int {
	best := 0
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Key, prefix)
		if !ok {
			continue
		}
		v, name, ok := strings.Cut(rest, "/")
		if !ok || name != entryName || !isVersion(v) {
			continue
		}
		if n, err := strconv.Atoi(v[1:]); err == nil && n > best {
			best = n
		}
	}
	return best
}
