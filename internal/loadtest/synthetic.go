package loadtest

import (
	"fmt"
	"strings"
)

// SyntheticLecture returns the objects of a lecture laid out as the worker publishes one
// (hls/{lecture}/v1/master.m3u8, a directory per rung with index.m3u8, init.mp4 and seg_NNNNN.m4s,
// and an alternate audio rendition in audio/), keyed by object key. The media are filler bytes
// sized to each rung's bit rate, not playable video: enough for load tests of caches and routing,
// which never decode. peaks are the rungs' BANDWIDTH values in bit/s (in ascending order, each a
// different number of kb/s); a video segment weighs 80% of its rung's peak over segSeconds, and the
// audio rendition is 64 kb/s.
func SyntheticLecture(lecture string, peaks []int, segSeconds float64, segments int) map[string][]byte {
	const audioRate = 64000
	dir := "hls/" + lecture + "/v1/"
	out := map[string][]byte{}
	media := func(name string, rate int) {
		var p strings.Builder
		fmt.Fprintf(&p, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%.0f\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n", segSeconds+0.49)
		size := int(float64(rate) * 0.8 * segSeconds / 8)
		for i := range segments {
			seg := fmt.Sprintf("seg_%05d.m4s", i)
			fmt.Fprintf(&p, "#EXTINF:%.3f,\n%s\n", segSeconds, seg)
			out[dir+name+"/"+seg] = filler(size, i)
		}
		p.WriteString("#EXT-X-ENDLIST\n")
		out[dir+name+"/index.m3u8"] = []byte(p.String())
		out[dir+name+"/init.mp4"] = filler(800, -1)
	}
	var m strings.Builder
	m.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	m.WriteString("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/index.m3u8\"\n")
	for i, peak := range peaks {
		h := min(360+180*i, 1080)
		fmt.Fprintf(&m, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\"\n%dk/index.m3u8\n",
			peak, h*16/9, h, peak/1000)
		media(fmt.Sprintf("%dk", peak/1000), peak)
	}
	media("audio", audioRate)
	out[dir+"master.m3u8"] = []byte(m.String())
	return out
}

// filler is n bytes that differ from segment to segment.
func filler(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed*13)
	}
	return b
}
