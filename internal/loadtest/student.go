package loadtest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/hls"
)

// student is one virtual viewer playing one lecture like hls.js does.
type student struct {
	r         *runner
	rng       *rand.Rand
	sid, cid  string   // CMCD session and content ids
	entry     *url.URL // the master playlist's URL at the target (the router)
	bandwidth float64  // bit/s at 1x
	est       *estimator
	pb        playback
	lists     map[string]*mediaList // media playlists fetched, by URL
	inits     map[string]bool       // init sections fetched, by URL
	count     counts
	startup   time.Duration // join to first media; 0 until then
	reported  int           // rebuffers already added to the live total
}

// counts are one student's tallies, merged into the report when it stops.
type counts struct {
	requests, bytes, switches, seeks int64
	errors                           map[string]int64
	rungs                            map[int]int64 // video segments by rung bandwidth
}

type outcome int

const (
	finished outcome = iota
	failed
	stopped // the run ended first
)

// mediaList is a parsed media playlist with its URLs resolved.
type mediaList struct {
	url      *url.URL
	init     *url.URL // EXT-X-MAP, nil for none
	segs     []segment
	duration float64
}

type segment struct {
	url        *url.URL
	start, end float64 // lecture seconds
}

// at returns the index of the segment that holds position pos, -1 past the end.
func (m *mediaList) at(pos float64) int {
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].end > pos+1e-3 })
	if i == len(m.segs) {
		return -1
	}
	return i
}

// rung is a video variant of the master.
type rung struct {
	bandwidth int
	url       *url.URL
}

// play runs the student from joining to the end of its watch time, the end of the lecture, a
// failure, or the end of the run.
func (s *student) play(ctx context.Context) outcome {
	cfg := s.r.cfg
	joined := time.Now()
	s.pb = playback{speed: cfg.Speed, last: joined}
	// The master goes through the router; its 302 names the edge every later URL resolves against.
	f, err := s.fetch(ctx, s.entry, cmcd{ot: "m", startup: true}, true)
	if err != nil {
		return s.end(err)
	}
	master, err := hls.ParseMaster(f.body)
	if err != nil {
		s.count.errors["bad-playlist"]++
		s.r.errors.Add(1)
		return failed
	}
	rungs, audioURL := variants(master, f.url)
	bws := make([]int, len(rungs))
	for i, r := range rungs {
		bws[i] = r.bandwidth
	}
	level := pickRung(bws, s.est.get())
	main, err := s.media(ctx, rungs[level].url)
	if err != nil {
		return s.end(err)
	}
	var audio *mediaList
	if audioURL != nil {
		if audio, err = s.media(ctx, audioURL); err != nil {
			return s.end(err)
		}
	}
	watch, maxBuf, top := cfg.Watch.Seconds(), cfg.MaxBuffer.Seconds(), bws[len(bws)-1]
	vEnd, aEnd := 0.0, math.Inf(1) // buffered ends of the video and audio tracks
	if audio != nil {
		aEnd = 0
	}
	for {
		now := time.Now()
		s.pb.advance(now)
		s.reportRebuffers()
		if s.pb.started && s.pb.played+s.pb.ahead() >= watch {
			break
		}
		i := main.at(vEnd)
		if i < 0 {
			break // the end of the lecture is buffered
		}
		// hls.js loads the next fragment while the buffer is shorter than maxBufferLength.
		if ahead := s.pb.ahead(); s.pb.started && !s.pb.seeking && ahead >= maxBuf {
			wait := time.Duration((ahead - maxBuf) / cfg.Speed * float64(time.Second))
			if sleep(ctx, wait+time.Millisecond) != nil {
				return s.end(errStopped)
			}
			continue
		}
		if next := pickRung(bws, s.est.get()); next != level {
			level = next
			s.count.switches++
			s.r.switches.Add(1)
			if main, err = s.media(ctx, rungs[level].url); err != nil {
				return s.end(err)
			}
			if i = main.at(vEnd); i < 0 {
				break
			}
		}
		c := cmcd{br: rungs[level].bandwidth / 1000, tb: top / 1000, bl: int(s.pb.ahead() * 1000), startup: !s.pb.started || s.pb.seeking}
		if s.est.measured() {
			c.mtp = int(s.est.get() / 1000)
		}
		if err := s.init(ctx, main.init, c); err != nil {
			return s.end(err)
		}
		seg := main.segs[i]
		c.ot, c.d = "v", int((seg.end-seg.start)*1000)
		if i+1 < len(main.segs) {
			c.nor = relative(seg.url, main.segs[i+1].url)
		}
		f, err := s.fetch(ctx, seg.url, c, false)
		if err != nil {
			return s.end(err)
		}
		s.est.sample(f.took*cfg.Speed, f.n)
		s.count.rungs[rungs[level].bandwidth]++
		vEnd = seg.end
		if audio != nil {
			if aEnd, err = s.audioUpTo(ctx, audio, aEnd, vEnd, c); err != nil {
				return s.end(err)
			}
		}
		end, now := math.Min(vEnd, aEnd), time.Now()
		if !s.pb.started {
			s.startup = now.Sub(joined)
			s.pb.start(now, s.pb.head, end)
		} else {
			s.pb.buffered(now, end)
		}
		if cfg.Seek > 0 && s.rng.Float64() < cfg.Seek {
			pos := s.rng.Float64() * main.duration * 0.95
			s.count.seeks++
			s.r.seeks.Add(1)
			s.pb.seek(now, pos)
			vEnd = pos
			if audio != nil {
				aEnd = pos
			}
		}
	}
	// Everything left to watch is buffered: it plays out with no more requests.
	s.pb.advance(time.Now())
	s.pb.played += s.pb.ahead()
	s.pb.head = s.pb.end
	return finished
}

// reportRebuffers adds the rebuffers not yet counted to the run's live total.
func (s *student) reportRebuffers() {
	if s.pb.rebuffers > s.reported {
		s.r.rebuffers.Add(int64(s.pb.rebuffers - s.reported))
		s.reported = s.pb.rebuffers
	}
}

// audioUpTo fetches audio segments from the buffered end aEnd until the audio reaches vEnd (hls.js's
// audio stream controller keeps the audio buffer level with the video's), and returns the new end.
func (s *student) audioUpTo(ctx context.Context, audio *mediaList, aEnd, vEnd float64, c cmcd) (float64, error) {
	c.br, c.tb, c.nor = 0, 0, ""
	for aEnd < vEnd-1e-3 {
		j := audio.at(aEnd)
		if j < 0 {
			return math.Inf(1), nil
		}
		if err := s.init(ctx, audio.init, c); err != nil {
			return aEnd, err
		}
		seg := audio.segs[j]
		c.ot, c.d = "a", int((seg.end-seg.start)*1000)
		if j+1 < len(audio.segs) {
			c.nor = relative(seg.url, audio.segs[j+1].url)
		}
		if _, err := s.fetch(ctx, seg.url, c, false); err != nil {
			return aEnd, err
		}
		aEnd = seg.end
	}
	return aEnd, nil
}

// init fetches an init section the first time this student needs it (a browser keeps it).
func (s *student) init(ctx context.Context, u *url.URL, c cmcd) error {
	if u == nil || s.inits[u.String()] {
		return nil
	}
	c.ot, c.nor = "i", ""
	if _, err := s.fetch(ctx, u, c, false); err != nil {
		return err
	}
	s.inits[u.String()] = true
	return nil
}

// media returns the media playlist at u, fetched once per student.
func (s *student) media(ctx context.Context, u *url.URL) (*mediaList, error) {
	if m := s.lists[u.String()]; m != nil {
		return m, nil
	}
	f, err := s.fetch(ctx, u, cmcd{ot: "m", startup: !s.pb.started}, true)
	if err != nil {
		return nil, err
	}
	p, err := hls.ParseMedia(f.body)
	if err != nil || len(p.Segments) == 0 {
		s.count.errors["bad-playlist"]++
		s.r.errors.Add(1)
		return nil, &failure{key: "bad-playlist", url: u.Path}
	}
	m := &mediaList{url: f.url}
	if p.InitURI != "" {
		m.init = resolve(f.url, p.InitURI)
	}
	for _, seg := range p.Segments {
		m.segs = append(m.segs, segment{url: resolve(f.url, seg.URI), start: m.duration, end: m.duration + seg.Duration})
		m.duration += seg.Duration
	}
	s.lists[u.String()] = m
	return m, nil
}

// end maps the error that stopped a student to its outcome.
func (s *student) end(err error) outcome {
	s.pb.advance(time.Now())
	if errors.Is(err, errStopped) {
		return stopped
	}
	return failed
}

// variants returns the master's video variants in ascending bandwidth, resolved against the URL it
// came from, and the URL of the default audio rendition they play with (nil when the audio is muxed).
// Audio-only variants are left out when there is video, as hls.js does.
func variants(m hls.Master, base *url.URL) ([]rung, *url.URL) {
	var video, all []rung
	group := ""
	for _, v := range m.Variants {
		r := rung{bandwidth: v.Bandwidth, url: resolve(base, v.URI)}
		all = append(all, r)
		if v.Width > 0 || hasVideoCodec(v.Codecs) {
			video = append(video, r)
			if group == "" {
				group = v.Audio
			}
		}
	}
	if len(video) == 0 {
		video = all
		group = m.Variants[0].Audio
	}
	sort.SliceStable(video, func(i, j int) bool { return video[i].bandwidth < video[j].bandwidth })
	var audio *url.URL
	for _, a := range m.Audio {
		if a.GroupID == group && a.URI != "" && (audio == nil || a.Default) {
			audio = resolve(base, a.URI)
		}
	}
	return video, audio
}

func hasVideoCodec(codecs string) bool {
	for c := range strings.SplitSeq(codecs, ",") {
		switch strings.SplitN(strings.TrimSpace(c), ".", 2)[0] {
		case "avc1", "avc3", "hvc1", "hev1", "av01", "vp09", "dvh1":
			return true
		}
	}
	return false
}

// resolve resolves a playlist URI against the URL of the playlist, as a browser does.
func resolve(base *url.URL, ref string) *url.URL {
	u, err := url.Parse(ref)
	if err != nil {
		return base.ResolveReference(&url.URL{Path: ref})
	}
	return base.ResolveReference(u)
}
