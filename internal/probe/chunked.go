package probe

import (
	"bytes"
	"errors"
)

// maxChunk bounds a chunk size so that sums cannot overflow; any real
// chunk past it is cut by the read limit anyway.
const maxChunk = 1 << 40

// chunkHeader parses the chunk-size line at the start of b
// ("1a;ext=x\r\n"). ok is false while the line is incomplete.
func chunkHeader(b []byte) (size, headerLen int, ok bool, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0, 0, false, nil
	}
	digits := 0
	for _, c := range b[:i] {
		var v int
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'a' && c <= 'f':
			v = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			v = int(c-'A') + 10
		default:
			v = -1
		}
		if v < 0 {
			break
		}
		size = size*16 + v
		digits++
		if size > maxChunk {
			return 0, 0, false, errors.New("chunk size too large")
		}
	}
	if digits == 0 {
		return 0, 0, false, errors.New("chunk size line without a size")
	}
	return size, i + 1, true, nil
}

// chunkedDone says whether b holds a whole chunked body: every chunk, the
// last (empty) chunk and the trailer section.
func chunkedDone(b []byte) (bool, error) {
	for {
		size, hl, ok, err := chunkHeader(b)
		if !ok || err != nil {
			return false, err
		}
		b = b[hl:]
		if size == 0 {
			end, _ := headEnd(b, 0) // the trailers end with a blank line
			return end >= 0, nil
		}
		if len(b) < size+2 {
			return false, nil
		}
		b = b[size+2:]
	}
}

// dechunk decodes the chunked body b in place as far as it goes (a body
// cut by the read limit keeps its last, partial chunk) and returns the
// data.
func dechunk(b []byte) []byte {
	out := b[:0]
	r := 0
	for r < len(b) {
		size, hl, ok, err := chunkHeader(b[r:])
		if !ok || err != nil || size == 0 {
			break
		}
		r += hl
		m := min(size, len(b)-r)
		out = append(out, b[r:r+m]...) // moves data left: out never passes r
		r += m + 2
	}
	return out
}
