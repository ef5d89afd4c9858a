package transcode

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// trackInfo is what the master playlist needs from an fMP4 initialisation section.
type trackInfo struct {
	codec         string // RFC 6381, e.g. "avc1.64001f" or "mp4a.40.2"
	width, height int    // from the visual sample entry; 0 for audio
}

// readInitSegment finds the first sample entry in an fMP4 init segment (moov/trak/mdia/minf/stbl/stsd)
// and derives the codec string from the encoder's own configuration record. Reading the record, rather
// than assuming "High@3.1", keeps CODECS right when x264 picks another level for a tall rung or a high
// frame rate; players refuse variants whose CODECS they believe they cannot decode.
func readInitSegment(data []byte) (trackInfo, error) {
	stsd, err := findPath(data, "moov", "trak", "mdia", "minf", "stbl", "stsd")
	if err != nil {
		return trackInfo{}, err
	}
	// stsd is a full box (version+flags) followed by an entry count.
	if len(stsd) < 8 || binary.BigEndian.Uint32(stsd[4:8]) == 0 {
		return trackInfo{}, errors.New("init segment: empty stsd")
	}
	typ, entry, _, err := nextBox(stsd[8:])
	if err != nil {
		return trackInfo{}, fmt.Errorf("init segment: stsd: %w", err)
	}
	switch typ {
	case "avc1", "avc3":
		return readAVC(typ, entry)
	case "mp4a":
		return readMP4A(entry)
	default:
		return trackInfo{}, fmt.Errorf("init segment: unsupported sample entry %q", typ)
	}
}

// readAVC reads a VisualSampleEntry (ISO 14496-12 §12.1.3): 78 bytes of fields, then child boxes.
func readAVC(typ string, entry []byte) (trackInfo, error) {
	if len(entry) < 78 {
		return trackInfo{}, errors.New("init segment: short visual sample entry")
	}
	info := trackInfo{
		width:  int(binary.BigEndian.Uint16(entry[24:26])),
		height: int(binary.BigEndian.Uint16(entry[26:28])),
	}
	avcC, err := findPath(entry[78:], "avcC")
	if err != nil {
		return trackInfo{}, err
	}
	// AVCDecoderConfigurationRecord: version, profile, constraint flags, level (ISO 14496-15 §5.3.3.1).
	if len(avcC) < 4 || avcC[0] != 1 {
		return trackInfo{}, errors.New("init segment: bad avcC")
	}
	info.codec = fmt.Sprintf("%s.%02x%02x%02x", typ, avcC[1], avcC[2], avcC[3])
	return info, nil
}

// readMP4A reads an AudioSampleEntry (28 bytes of fields, then esds) and the MPEG-4 descriptors inside
// esds down to the AudioSpecificConfig, whose first five bits are the audio object type (2 = AAC-LC).
func readMP4A(entry []byte) (trackInfo, error) {
	if len(entry) < 28 {
		return trackInfo{}, errors.New("init segment: short audio sample entry")
	}
	esds, err := findPath(entry[28:], "esds")
	if err != nil {
		return trackInfo{}, err
	}
	if len(esds) < 4 {
		return trackInfo{}, errors.New("init segment: short esds")
	}
	d := esds[4:] // full box header
	tag, body, _, err := descriptor(d)
	if err != nil || tag != 0x03 {
		return trackInfo{}, errors.New("init segment: esds without ES_Descriptor")
	}
	// ES_Descriptor: ES_ID(2), flags(1), then optional fields the flags announce.
	if len(body) < 3 {
		return trackInfo{}, errors.New("init segment: short ES_Descriptor")
	}
	flags := body[2]
	body = body[3:]
	if flags&0x80 != 0 { // streamDependenceFlag
		body = skip(body, 2)
	}
	if flags&0x40 != 0 && len(body) > 0 { // URL_Flag
		body = skip(body, 1+int(body[0]))
	}
	if flags&0x20 != 0 { // OCRstreamFlag
		body = skip(body, 2)
	}
	tag, dcd, _, err := descriptor(body)
	if err != nil || tag != 0x04 || len(dcd) < 13 {
		return trackInfo{}, errors.New("init segment: no DecoderConfigDescriptor")
	}
	oti := dcd[0]
	codec := fmt.Sprintf("mp4a.%02x", oti)
	// DecoderConfigDescriptor: objectTypeIndication(1), streamType(1), bufferSizeDB(3), maxBitrate(4),
	// avgBitrate(4), then DecoderSpecificInfo.
	if tag, asc, _, err := descriptor(dcd[13:]); err == nil && tag == 0x05 && len(asc) > 0 {
		aot := int(asc[0] >> 3)
		if aot == 31 && len(asc) > 1 { // escape: 6 more bits
			aot = 32 + int(asc[0]&0x07)<<3 | int(asc[1]>>5)
		}
		codec = fmt.Sprintf("%s.%d", codec, aot)
	}
	return trackInfo{codec: codec}, nil
}

func skip(b []byte, n int) []byte {
	if n > len(b) {
		return nil
	}
	return b[n:]
}

// descriptor splits an MPEG-4 descriptor (ISO 14496-1 §8.3.3): a tag byte, then a length coded in up to
// four 7-bit groups.
func descriptor(b []byte) (tag byte, body, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("short descriptor")
	}
	tag = b[0]
	n, i := 0, 1
	for {
		if i >= len(b) || i > 4 {
			return 0, nil, nil, errors.New("bad descriptor length")
		}
		c := b[i]
		i++
		n = n<<7 | int(c&0x7f)
		if c&0x80 == 0 {
			break
		}
	}
	if n > len(b)-i {
		return 0, nil, nil, errors.New("descriptor overruns its parent")
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// nextBox splits one ISO BMFF box off b: its type, payload and what follows it.
func nextBox(b []byte) (typ string, payload, rest []byte, err error) {
	if len(b) < 8 {
		return "", nil, nil, errors.New("short box header")
	}
	size := uint64(binary.BigEndian.Uint32(b[0:4]))
	typ = string(b[4:8])
	header := uint64(8)
	switch size {
	case 0: // to the end of the file
		size = uint64(len(b))
	case 1: // 64-bit size follows the type
		if len(b) < 16 {
			return "", nil, nil, errors.New("short large box header")
		}
		size = binary.BigEndian.Uint64(b[8:16])
		header = 16
	}
	if size < header || size > uint64(len(b)) {
		return "", nil, nil, fmt.Errorf("box %q: size %d outside its parent (%d bytes)", typ, size, len(b))
	}
	return typ, b[header:size], b[size:], nil
}

// findPath descends through the first box of each type in path and returns the last one's payload.
func findPath(b []byte, path ...string) ([]byte, error) {
	for _, want := range path {
		found := false
		for len(b) > 0 {
			typ, payload, rest, err := nextBox(b)
			if err != nil {
				return nil, fmt.Errorf("init segment: looking for %s: %w", want, err)
			}
			if typ == want {
				b, found = payload, true
				break
			}
			b = rest
		}
		if !found {
			return nil, fmt.Errorf("init segment: no %s box", want)
		}
	}
	return b, nil
}
