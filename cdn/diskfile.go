package cdn

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// The disk tier's file format, one file per key:
//
//	0   magic "LCDE"
//	4   format version (1), then 3 zero bytes
//	8   meta length, uint32 little endian
//	12  body length, uint64 little endian
//	20  meta: JSON of diskMeta
//	..  body
//	end CRC32C (Castagnoli) of everything before it, uint32 little endian
//
// The prefix and meta alone are enough to index a file at start-up (the lengths must add up to the
// file's size and the key must hash to its name); the checksum is verified on every read.
const (
	diskMagic      = "LCDE"
	diskVersion    = 1
	diskPrefixLen  = 20
	diskTrailerLen = 4
	// diskMaxMeta bounds the meta a reader will allocate for, so a damaged length cannot ask for
	// gigabytes.
	diskMaxMeta = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errDiskCorrupt = errors.New("cdn: corrupt disk entry")

// diskMeta is what a file stores besides the body: the entry's fields that are not derived from its
// headers, and the key, so a file under the wrong name is caught.
type diskMeta struct {
	Key          string      `json:"key"`
	Status       int         `json:"status"`
	Header       http.Header `json:"header"`
	ResponseTime int64       `json:"response_time"` // Unix nanoseconds, on the edge's clock
	InitialAge   int64       `json:"initial_age"`   // nanoseconds
	Lifetime     int64       `json:"lifetime"`      // nanoseconds
	Vary         []string    `json:"vary,omitempty"`
	VaryValues   []string    `json:"vary_values,omitempty"`
}

// diskName is the file name for key: the hex SHA-256 of the key, under a subdirectory named by its
// first two hex digits, so that no directory holds more than a 256th of the files.
func diskName(key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(h[:2], h)
}

// encodeEntry returns the file contents for ent under key, except the body, which the caller writes
// between head and trailer (entries share their body with the memory tier; it is not copied).
func encodeEntry(key string, ent *entry) (head, trailer []byte, err error) {
	meta, err := json.Marshal(diskMeta{
		Key: key, Status: ent.status, Header: ent.header,
		ResponseTime: ent.responseTime.UnixNano(), InitialAge: int64(ent.initialAge), Lifetime: int64(ent.lifetime),
		Vary: ent.vary, VaryValues: ent.varyValues,
	})
	if err != nil {
		return nil, nil, err
	}
	if len(meta) > diskMaxMeta {
		return nil, nil, fmt.Errorf("cdn: headers of %s too large for the disk tier", key)
	}
	head = make([]byte, diskPrefixLen, diskPrefixLen+len(meta))
	copy(head, diskMagic)
	head[4] = diskVersion
	binary.LittleEndian.PutUint32(head[8:], uint32(len(meta)))
	binary.LittleEndian.PutUint64(head[12:], uint64(len(ent.body)))
	head = append(head, meta...)
	crc := crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, ent.body)
	trailer = binary.LittleEndian.AppendUint32(nil, crc)
	return head, trailer, nil
}

// decodeEntry checks a whole file read for key (length, checksum, key) and rebuilds its entry. Any
// failure is errDiskCorrupt: the file must not be served.
func decodeEntry(key string, data []byte) (*entry, error) {
	metaLen, bodyLen, err := parsePrefix(data, int64(len(data)))
	if err != nil {
		return nil, err
	}
	end := len(data) - diskTrailerLen
	if crc32.Checksum(data[:end], castagnoli) != binary.LittleEndian.Uint32(data[end:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errDiskCorrupt)
	}
	meta, err := parseMeta(data[diskPrefixLen : diskPrefixLen+metaLen])
	if err != nil {
		return nil, err
	}
	if meta.Key != key {
		return nil, fmt.Errorf("%w: holds another key", errDiskCorrupt)
	}
	// Full slice expression: the body must not alias the trailer if anyone ever appends.
	body := data[diskPrefixLen+metaLen : diskPrefixLen+metaLen+int(bodyLen) : diskPrefixLen+metaLen+int(bodyLen)]
	h := meta.Header
	if h == nil {
		h = http.Header{}
	}
	ent := &entry{
		status:       meta.Status,
		header:       h,
		body:         body,
		responseTime: time.Unix(0, meta.ResponseTime),
		initialAge:   time.Duration(meta.InitialAge),
		lifetime:     time.Duration(meta.Lifetime),
		vary:         meta.Vary,
		varyValues:   meta.VaryValues,
		stale:        staleRulesOf(h),
	}
	ent.lastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	ent.weight = weigh(key, h, body)
	ent.full = fullHeader(h, len(body))
	return ent, nil
}

// parsePrefix checks the fixed prefix against a file of size bytes and returns the lengths it
// declares.
func parsePrefix(prefix []byte, size int64) (metaLen int, bodyLen int64, err error) {
	if len(prefix) < diskPrefixLen || string(prefix[:4]) != diskMagic {
		return 0, 0, fmt.Errorf("%w: bad magic", errDiskCorrupt)
	}
	if prefix[4] != diskVersion {
		return 0, 0, fmt.Errorf("%w: format version %d", errDiskCorrupt, prefix[4])
	}
	ml := binary.LittleEndian.Uint32(prefix[8:])
	bl := binary.LittleEndian.Uint64(prefix[12:])
	if ml > diskMaxMeta || bl > uint64(size) || size != diskPrefixLen+int64(ml)+int64(bl)+diskTrailerLen {
		return 0, 0, fmt.Errorf("%w: lengths do not match the file size", errDiskCorrupt)
	}
	return int(ml), int64(bl), nil
}

func parseMeta(b []byte) (diskMeta, error) {
	var m diskMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: meta: %v", errDiskCorrupt, err)
	}
	if m.Status < 100 || m.Status > 999 || len(m.Vary) != len(m.VaryValues) || m.Key == "" {
		return m, fmt.Errorf("%w: meta out of range", errDiskCorrupt)
	}
	return m, nil
}

// readKey is the start-up check of a file: the prefix and meta are read (not the body), the lengths
// must match size, and the key must hash to name. It returns the key the file holds.
func readKey(r io.Reader, size int64, name string) (string, error) {
	var prefix [diskPrefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return "", fmt.Errorf("%w: %v", errDiskCorrupt, err)
	}
	metaLen, _, err := parsePrefix(prefix[:], size)
	if err != nil {
		return "", err
	}
	mb := make([]byte, metaLen)
	if _, err := io.ReadFull(r, mb); err != nil {
		return "", fmt.Errorf("%w: %v", errDiskCorrupt, err)
	}
	meta, err := parseMeta(mb)
	if err != nil {
		return "", err
	}
	if filepath.Base(diskName(meta.Key)) != name {
		return "", fmt.Errorf("%w: holds another key", errDiskCorrupt)
	}
	return meta.Key, nil
}

// isDiskName reports whether name looks like an entry file's name (64 lowercase hex digits).
func isDiskName(name string) bool {
	if len(name) != 64 {
		return false
	}
	return strings.Trim(name, "0123456789abcdef") == ""
}
