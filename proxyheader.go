package tcpproxy

import (
	"bufio"
	"bytes"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// headerReaderSize holds a whole v1 header (at most 107 bytes, which the
// library wants to find in one read) and the usual v2 headers with their
// TLVs; a bigger v2 header (up to the library's 4 KiB limit) is read
// through it.
const headerReaderSize = 512

// headerReaders are the buffers PROXY headers are read through, pooled:
// a trusted connection needs one only until its header is parsed.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headerReaderSize) }}

// readProxyHeader reads the PROXY header that a trusted source must send
// first, within the handler's header timeout, and makes its source
// address the client's (and its destination the one we pass on in our
// own PROXY header). A LOCAL header (v2: the outer balancer's health
// check) and a v1 UNKNOWN one keep the connection's own addresses. The
// client bytes read past the header are kept in s.early, for the target;
// when none were, the connection is again a plain socket and the relay
// can splice. A missing, malformed, oversized or late header is an error.
func (h *Handler) readProxyHeader(s *session) error {
	cx := s.cx
	if err := cx.SetReadDeadline(time.Now().Add(h.clients.headerTimeout)); err != nil {
		return err
	}
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(cx)
	hdr, err := proxyproto.Read(br)
	if n := br.Buffered(); err == nil && n > 0 {
		rest, _ := br.Peek(n)
		s.early = bytes.Clone(rest)
	}
	br.Reset(nil)
	headerReaders.Put(br)
	if err != nil {
		return err
	}
	if err := cx.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	if hdr.Command == proxyproto.LOCAL {
		return nil
	}
	if src, dst, ok := hdr.TCPAddrs(); ok {
		s.client, s.dest = addrPort(src), addrPort(dst)
	}
	return nil
}
