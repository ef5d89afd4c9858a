package origin

import (
	"path"
	"strings"
)

// hlsPrefix is the URL prefix of object requests; the storage key is the URL path without the leading
// slash, so the URL space and the key space are the same and nothing needs translating.
const hlsPrefix = "/hls/"

// maxKeyLen is storage's limit on key length; longer paths cannot name an object.
const maxKeyLen = 1024

// Kind is the class of an object, used to break counters down by what players are fetching.
type Kind int

const (
	KindPlaylist Kind = iota // .m3u8
	KindInit                 // .mp4 (initialization sections)
	KindSegment              // .m4s, .ts
	KindOther                // subtitles, thumbnails, posters, anything else
	numKinds
)

// String returns the metric label of k.
func (k Kind) String() string {
	switch k {
	case KindPlaylist:
		return "playlist"
	case KindInit:
		return "init"
	case KindSegment:
		return "segment"
	default:
		return "other"
	}
}

// kindOf classifies an object by its extension. Only .mp4 files in the object layout are init sections
// (init.mp4); segments are fragmented MP4 (.m4s) or, for older players, MPEG-TS.
func kindOf(p string) Kind {
	switch strings.ToLower(path.Ext(p)) {
	case ".m3u8":
		return KindPlaylist
	case ".mp4":
		return KindInit
	case ".m4s", ".ts":
		return KindSegment
	default:
		return KindOther
	}
}

// typeByExt maps extensions to the media types players expect. Players (Safari in particular) refuse
// playlists and segments with a generic type, so this wins over whatever storage recorded, except for
// .mp4 where storage may know better (an audio-only init section is audio/mp4) unless it only
// recorded the generic type.
func typeByExt(ext string) string {
	switch ext {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".mp4":
		return "video/mp4"
	case ".m4s":
		return "video/iso.segment"
	case ".ts":
		return "video/mp2t"
	case ".vtt":
		return "text/vtt"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	default:
		return ""
	}
}

// contentType picks the Content-Type for key given what storage recorded.
func contentType(key, stored string) string {
	ext := strings.ToLower(path.Ext(key))
	byExt := typeByExt(ext)
	switch {
	case ext == ".mp4" && stored != "" && stored != genericType:
		return stored
	case byExt != "":
		return byExt
	case stored != "":
		return stored
	default:
		return genericType
	}
}

// genericType is what storage reports for an object stored without a type; it says nothing.
const genericType = "application/octet-stream"

// objectKey validates an object URL path and returns its storage key. ok is false for anything that
// is not /hls/{lecture}/v{n}/{path...} with the segment rules of the package documentation.
func objectKey(urlPath string) (key string, ok bool) {
	rest, found := strings.CutPrefix(urlPath, hlsPrefix)
	if !found {
		return "", false
	}
	if len(urlPath) > maxKeyLen+1 {
		return "", false
	}
	// lecture, version, and at least one segment of the object's own path; no allocation.
	lecture, rest, ok := strings.Cut(rest, "/")
	if !ok || !isLectureID(lecture) {
		return "", false
	}
	version, rest, ok := strings.Cut(rest, "/")
	if !ok || !isVersion(version) {
		return "", false
	}
	for {
		seg, more, found := strings.Cut(rest, "/")
		if !isObjectSegment(seg) {
			return "", false
		}
		if !found {
			break
		}
		rest = more
	}
	return urlPath[1:], true
}

func isLectureID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isVersion accepts v1, v2, ... v10 but not v0 or v01: one version has exactly one spelling, so two
// URLs never name the same object and caches never hold it twice.
func isVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isObjectSegment keeps to the characters the publisher writes. Starting with a dot is refused, which
// rules out "." and ".." and hidden files; ".." anywhere is refused because storage refuses it too,
// and a key storage refuses must be a 404 here rather than a storage error. The check runs on the
// percent-decoded path, so an encoded byte outside the set (a NUL, a backslash) fails too; a path with
// any needless escaping (an encoded "/" or letter) is refused before this, in ServeHTTP.
func isObjectSegment(s string) bool {
	if s == "" || s[0] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
