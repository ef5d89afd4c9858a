// Package hls reads and writes HLS playlists (RFC 8216) in Lectern's own types.
//
// It is the only package that imports github.com/grafov/m3u8. That library is archived, so it stays
// behind this seam: a later swap to another library (or to hand-written code) changes this package only.
//
// # Writing
//
// [WriteMaster] writes the multivariant ("master") playlist the transcode worker publishes, with its
// audio and subtitle groups. ffmpeg writes the media playlists of the renditions, and the worker publishes
// them as written (apart from renaming the init section); [WriteSingleFileMedia] writes the one-segment
// playlist that makes an uploaded WebVTT file a SUBTITLES rendition.
//
// # Reading
//
// [ParseMedia] reads a media playlist (ffmpeg's output, or one fetched from the origin); [ParseMaster]
// reads a master playlist. Both reject garbage and the wrong kind of playlist.
//
// # grafov/m3u8 quirks handled here
//
//   - The writer always emits PROGRAM-ID on EXT-X-STREAM-INF, an attribute removed in protocol version 6;
//     WriteMaster strips it because our masters are version 7.
//   - Append raises the version to 4 when a variant carries renditions, so WriteMaster sets the version
//     after appending.
//   - Renditions (EXT-X-MEDIA) hang off variants and are written once, before the first variant that
//     carries them. The package-level decoder attaches them to variants again after every line it reads,
//     so a parsed variant holds duplicates; ParseMaster de-duplicates. A rendition that no variant
//     references is lost by the library's parser.
//   - The parser raises a media playlist's target duration to ceil(EXTINF) of any longer segment;
//     ParseMedia reports EXT-X-TARGETDURATION as written.
//   - FRAME-RATE is written with three decimals ("30.000"), CODECS quoted, RESOLUTION unquoted; the writer
//     has no CHANNELS attribute for audio renditions.
package hls

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/grafov/m3u8"
)

// Version is the EXT-X-VERSION of the masters we write: fMP4 media playlists use EXT-X-MAP outside
// I-frame playlists (version 6), and ffmpeg marks its fMP4 playlists 7; the master matches them.
const Version = 7

// Variant is one EXT-X-STREAM-INF entry: a rendition of the video (with its audio group).
type Variant struct {
	// URI of the media playlist, relative to the master.
	URI string
	// Bandwidth is the peak bit rate in bits per second (RFC 8216 §4.3.4.2), including audio.
	Bandwidth int
	// AverageBandwidth is the average bit rate in bits per second, including audio; 0 omits it.
	AverageBandwidth int
	// Codecs is the RFC 6381 list, e.g. "avc1.64001f,mp4a.40.2".
	Codecs string
	// Width and Height form RESOLUTION; both 0 omits it (audio-only variants).
	Width, Height int
	// FrameRate is the maximum frame rate; 0 omits it.
	FrameRate float64
	// Audio is the GROUP-ID of the AudioRendition(s) played with this variant; "" for none.
	Audio string
	// Subtitles is the GROUP-ID of the SubtitleRendition(s) offered with this variant; "" for none.
	Subtitles string
}

// SubtitleRendition is one EXT-X-MEDIA TYPE=SUBTITLES entry: a WebVTT media playlist.
type SubtitleRendition struct {
	GroupID  string
	Name     string
	Language string // RFC 5646 tag; "" omits it
	URI      string
	// Default shows the captions without the viewer asking (AUTOSELECT is always YES, so a player
	// may pick them by the viewer's language).
	Default bool
}

// AudioRendition is one EXT-X-MEDIA TYPE=AUDIO entry.
type AudioRendition struct {
	GroupID  string
	Name     string
	Language string // RFC 5646 tag, e.g. "en"; "" omits it
	URI      string
	Default  bool
}

// Master is a multivariant playlist.
type Master struct {
	// Variants in the order they are written. The first is where most players start, so the caller
	// chooses the order.
	Variants  []Variant
	Audio     []AudioRendition
	Subtitles []SubtitleRendition
	// IndependentSegments writes EXT-X-INDEPENDENT-SEGMENTS: every segment starts with a key frame.
	IndependentSegments bool
}

// Segment is one media segment.
type Segment struct {
	URI      string
	Duration float64 // seconds, from EXTINF
}

// Media is a media playlist.
type Media struct {
	// TargetDuration is EXT-X-TARGETDURATION in seconds.
	TargetDuration float64
	// InitURI is the URI of the first EXT-X-MAP (the fMP4 initialisation section); "" for MPEG-TS.
	InitURI  string
	Segments []Segment
	// Ended is true when the playlist has EXT-X-ENDLIST (VOD, or a finished live stream).
	Ended bool
}

// Duration returns the sum of the segment durations.
func (m Media) Duration() float64 {
	var d float64
	for _, s := range m.Segments {
		d += s.Duration
	}
	return d
}

// WriteMaster encodes m as a version-7 master playlist. It returns an error when m is not something a
// player could use: no variants, a zero bandwidth, an AUDIO group with no rendition, or a value that
// would break the playlist syntax (quotes, line breaks).
func WriteMaster(m Master) ([]byte, error) {
	if err := validateMaster(m); err != nil {
		return nil, err
	}
	p := m3u8.NewMasterPlaylist()
	for _, v := range m.Variants {
		params := m3u8.VariantParams{
			Bandwidth:        uint32(v.Bandwidth),
			AverageBandwidth: uint32(v.AverageBandwidth),
			Codecs:           v.Codecs,
			Audio:            v.Audio,
			Subtitles:        v.Subtitles,
			FrameRate:        v.FrameRate,
		}
		if v.Width > 0 && v.Height > 0 {
			params.Resolution = fmt.Sprintf("%dx%d", v.Width, v.Height)
		}
		for _, a := range m.Audio {
			if a.GroupID != v.Audio {
				continue
			}
			alt := &m3u8.Alternative{
				Type:     "AUDIO",
				GroupId:  a.GroupID,
				Name:     a.Name,
				Language: a.Language,
				URI:      a.URI,
				Default:  a.Default,
			}
			if a.Default {
				// RFC 8216 §4.3.4.1: AUTOSELECT must be YES when DEFAULT is YES.
				alt.Autoselect = "YES"
			}
			params.Alternatives = append(params.Alternatives, alt)
		}
		for _, s := range m.Subtitles {
			if s.GroupID != v.Subtitles {
				continue
			}
			params.Alternatives = append(params.Alternatives, &m3u8.Alternative{
				Type: "SUBTITLES", GroupId: s.GroupID, Name: s.Name, Language: s.Language, URI: s.URI,
				Default: s.Default, Autoselect: "YES",
			})
		}
		p.Append(v.URI, nil, params)
	}
	p.SetVersion(Version)
	p.SetIndependentSegments(m.IndependentSegments)
	out := p.Encode().Bytes()
	out = bytes.ReplaceAll(out, []byte("#EXT-X-STREAM-INF:PROGRAM-ID=0,"), []byte("#EXT-X-STREAM-INF:"))
	return bytes.Clone(out), nil
}

func validateMaster(m Master) error {
	if len(m.Variants) == 0 {
		return errors.New("hls: master playlist without variants")
	}
	groups := make(map[string]bool)
	for _, a := range m.Audio {
		if a.GroupID == "" || a.Name == "" || a.URI == "" {
			return fmt.Errorf("hls: audio rendition %+v: GroupID, Name and URI are required", a)
		}
		if err := plain(a.GroupID, a.Name, a.Language, a.URI); err != nil {
			return err
		}
		groups[a.GroupID] = true
	}
	subGroups := make(map[string]bool)
	for _, s := range m.Subtitles {
		if s.GroupID == "" || s.Name == "" || s.URI == "" {
			return fmt.Errorf("hls: subtitle rendition %+v: GroupID, Name and URI are required", s)
		}
		if err := plain(s.GroupID, s.Name, s.Language, s.URI); err != nil {
			return err
		}
		subGroups[s.GroupID] = true
	}
	for _, v := range m.Variants {
		if v.URI == "" {
			return errors.New("hls: variant without URI")
		}
		if v.Bandwidth <= 0 || v.AverageBandwidth < 0 || v.Width < 0 || v.Height < 0 || v.FrameRate < 0 {
			return fmt.Errorf("hls: variant %s: invalid numbers %+v", v.URI, v)
		}
		if v.Audio != "" && !groups[v.Audio] {
			return fmt.Errorf("hls: variant %s: AUDIO group %q has no rendition", v.URI, v.Audio)
		}
		if v.Subtitles != "" && !subGroups[v.Subtitles] {
			return fmt.Errorf("hls: variant %s: SUBTITLES group %q has no rendition", v.URI, v.Subtitles)
		}
		if err := plain(v.URI, v.Codecs, v.Audio, v.Subtitles); err != nil {
			return err
		}
	}
	return nil
}

// plain rejects values that would break out of a quoted attribute or a URI line.
func plain(values ...string) error {
	for _, s := range values {
		if strings.ContainsAny(s, "\"\r\n") {
			return fmt.Errorf("hls: value %q contains a quote or line break", s)
		}
	}
	return nil
}

// WriteSingleFileMedia returns a VOD media playlist whose one segment is the file uri lasting
// duration seconds: how a WebVTT captions file becomes an HLS SUBTITLES rendition.
func WriteSingleFileMedia(uri string, duration float64) ([]byte, error) {
	if uri == "" || !(duration > 0) || math.IsInf(duration, 0) {
		return nil, fmt.Errorf("hls: single-file playlist: uri %q, duration %v", uri, duration)
	}
	if err := plain(uri); err != nil {
		return nil, err
	}
	p, err := m3u8.NewMediaPlaylist(1, 1)
	if err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	if err := p.Append(uri, duration, ""); err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	p.MediaType = m3u8.VOD
	p.TargetDuration = math.Ceil(duration)
	p.Close()
	return bytes.Clone(p.Encode().Bytes()), nil
}

// decode runs the library's type-detecting decoder. Strict mode turns a missing #EXTM3U and malformed
// numbers into errors instead of silently skipped lines.
func decode(data []byte) (m3u8.Playlist, m3u8.ListType, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, 0, errors.New("hls: empty playlist")
	}
	p, t, err := m3u8.DecodeFrom(bytes.NewReader(data), true)
	if err != nil {
		return nil, 0, fmt.Errorf("hls: parse playlist: %w", err)
	}
	return p, t, nil
}

// ParseMedia parses a media playlist. A master playlist is an error.
func ParseMedia(data []byte) (Media, error) {
	p, t, err := decode(data)
	if err != nil {
		return Media{}, err
	}
	mp, ok := p.(*m3u8.MediaPlaylist)
	if t != m3u8.MEDIA || !ok {
		return Media{}, errors.New("hls: expected a media playlist, got a master playlist")
	}
	m := Media{TargetDuration: mp.TargetDuration, Ended: mp.Closed}
	if td, ok := targetDurationTag(data); ok {
		m.TargetDuration = td
	}
	if mp.Map != nil {
		m.InitURI = mp.Map.URI
	}
	for _, s := range mp.GetAllSegments() {
		if s == nil {
			continue
		}
		m.Segments = append(m.Segments, Segment{URI: s.URI, Duration: s.Duration})
	}
	return m, nil
}

// ParseMaster parses a master playlist. A media playlist is an error.
func ParseMaster(data []byte) (Master, error) {
	p, t, err := decode(data)
	if err != nil {
		return Master{}, err
	}
	mp, ok := p.(*m3u8.MasterPlaylist)
	if t != m3u8.MASTER || !ok {
		return Master{}, errors.New("hls: expected a master playlist, got a media playlist")
	}
	m := Master{IndependentSegments: mp.IndependentSegments()}
	seen := make(map[AudioRendition]bool)
	seenSubs := make(map[SubtitleRendition]bool)
	for _, v := range mp.Variants {
		if v.Iframe {
			continue // I-frame playlists are not played; nothing in Lectern writes them yet
		}
		out := Variant{
			URI:              v.URI,
			Bandwidth:        int(v.Bandwidth),
			AverageBandwidth: int(v.AverageBandwidth),
			Codecs:           v.Codecs,
			FrameRate:        v.FrameRate,
			Audio:            v.Audio,
			Subtitles:        v.Subtitles,
		}
		if v.Resolution != "" {
			w, h, ok := parseResolution(v.Resolution)
			if !ok {
				return Master{}, fmt.Errorf("hls: variant %s: bad RESOLUTION %q", v.URI, v.Resolution)
			}
			out.Width, out.Height = w, h
		}
		m.Variants = append(m.Variants, out)
		for _, alt := range v.Alternatives {
			if alt != nil && alt.Type == "SUBTITLES" {
				s := SubtitleRendition{GroupID: alt.GroupId, Name: alt.Name, Language: alt.Language, URI: alt.URI, Default: alt.Default}
				if !seenSubs[s] {
					seenSubs[s] = true
					m.Subtitles = append(m.Subtitles, s)
				}
				continue
			}
			if alt == nil || alt.Type != "AUDIO" {
				continue
			}
			a := AudioRendition{GroupID: alt.GroupId, Name: alt.Name, Language: alt.Language, URI: alt.URI, Default: alt.Default}
			if !seen[a] {
				seen[a] = true
				m.Audio = append(m.Audio, a)
			}
		}
	}
	if len(m.Variants) == 0 {
		return Master{}, errors.New("hls: master playlist without variants")
	}
	return m, nil
}

// targetDurationTag reads EXT-X-TARGETDURATION as written. The library raises its TargetDuration to
// ceil(EXTINF) of any longer segment while parsing, which hides what the playlist actually declares
// (ffmpeg writes 6 next to 6.016 s AAC segments, which RFC 8216 allows: EXTINF rounds to 6).
func targetDurationTag(data []byte) (float64, bool) {
	const tag = "#EXT-X-TARGETDURATION:"
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), tag); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil && f > 0
		}
	}
	return 0, false
}

func parseResolution(s string) (w, h int, ok bool) {
	ws, hs, found := strings.Cut(s, "x")
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	return w, h, err1 == nil && err2 == nil && w > 0 && h > 0
}
