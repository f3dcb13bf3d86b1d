package probe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// readResponse reads an HTTP/1.x response into the session buffer and
// checks its status and, when asked, its body.
func (h *httpProbe) readResponse(s *session, p *Prober) error {
	var rerr error
	scan := 0 // the start of the first head line not yet complete
	for {
		var end int
		end, scan = headEnd(s.buf[:s.n], scan)
		if end < 0 {
			if s.full() {
				return &failure{msg: fmt.Sprintf("expected an HTTP response head within %d bytes, got %s", ReadLimit, quote(s.buf[:s.n]))}
			}
			if rerr != nil {
				return p.readFailed(rerr, "HTTP response", "an HTTP response", s.buf[:s.n])
			}
			rerr = s.fill()
			continue
		}
		code, ok := statusCode(s.buf[:end])
		if !ok {
			return &failure{msg: "expected an HTTP/1.x response, got " + quote(s.buf[:s.n])}
		}
		if code < 200 && code != 101 {
			// An interim response (100 Continue, 103 Early Hints): the
			// final one follows.
			s.n = copy(s.buf, s.buf[end:s.n])
			scan = 0
			continue
		}
		if !h.statusOK(code) {
			return &failure{msg: fmt.Sprintf("expected %s, got %d", h.want, code)}
		}
		if h.body == nil {
			return nil
		}
		noBody := h.noBody || code == 204 || code == 304 || code < 200
		return h.readBody(s, p, end, framingOf(s.buf[:end], noBody), rerr)
	}
}

// readBody reads the body that starts at start until it is complete (or
// the read limit is reached) and matches it against the body regexp.
func (h *httpProbe) readBody(s *session, p *Prober, start int, f framing, rerr error) error {
	for {
		body := s.buf[start:s.n]
		complete := false
		switch {
		case f.length == 0:
			body, complete = body[:0], true
		case f.chunked:
			done, err := chunkedDone(body)
			if err != nil {
				return &failure{msg: fmt.Sprintf("malformed chunked body (%v), got %s", err, quote(body))}
			}
			complete = done
		case f.length > 0:
			if len(body) >= f.length {
				body, complete = body[:f.length], true
			}
		default: // no length: the body ends when the target closes
			complete = errors.Is(rerr, io.EOF)
		}
		if complete || s.full() {
			if f.chunked {
				body = dechunk(body)
			}
			if !h.body.Match(body) {
				return &failure{msg: "expected body to match " + h.bodyQ + ", got " + quote(body)}
			}
			return nil
		}
		if rerr != nil {
			return p.readFailed(rerr, "complete response body", "the complete response body", body)
		}
		rerr = s.fill()
	}
}

// headEnd looks for the blank line that ends a response head in b,
// scanning the lines from `from` (a line start). It returns the offset
// after the blank line, or -1 and where to resume once more has come.
// A bare LF ends a line too, as most HTTP clients accept.
func headEnd(b []byte, from int) (end, resume int) {
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return -1, from
		}
		line := b[from : from+i]
		from += i + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return from, from
		}
	}
}

// statusCode parses the status line "HTTP/1.x NNN[ reason]" at the start
// of head.
func statusCode(head []byte) (int, bool) {
	const prefix = "HTTP/1.x NNN"
	if len(head) < len(prefix) || !bytes.HasPrefix(head, []byte("HTTP/1.")) || head[8] != ' ' {
		return 0, false
	}
	if len(head) > len(prefix) && head[12] != ' ' && head[12] != '\r' && head[12] != '\n' {
		return 0, false
	}
	code := 0
	for _, c := range head[9:12] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 100
}

// framing is how a response body ends.
type framing struct {
	chunked bool
	length  int // -1: unknown, the body ends when the connection does
}

// framingOf reads Transfer-Encoding and Content-Length from head.
func framingOf(head []byte, noBody bool) framing {
	if noBody {
		return framing{length: 0}
	}
	f := framing{length: -1}
	lines := head[bytes.IndexByte(head, '\n')+1:]
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(lines[:i], "\r")
		lines = lines[i+1:]
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			// chunked is the last coding whenever it is there (RFC 9112).
			f.chunked = len(value) >= 7 && bytes.EqualFold(value[len(value)-7:], []byte("chunked"))
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n, ok := atoi(value); ok {
				f.length = n
			}
		}
	}
	if f.chunked {
		f.length = -1
	}
	return f
}

// atoi parses a non-negative decimal that fits an int with room to spare.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
