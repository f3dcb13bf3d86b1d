//go:build linux

package evloop

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Moving bytes. A burst is read into the loop's buffer and written on at
// once: two system calls and no copy kept. A burst that fills the buffer
// marks the direction as bulk, and bulk moves by splice through the
// loop's pipe, in the kernel. When the destination takes only part, the
// rest (from the buffer or the pipe, which must be empty for the next
// connection) is parked in a buffer from a pool and the source is no
// longer read until the destination drains it: an idle or a slow
// connection holds no buffer of the loop, and at most one parked chunk
// per direction.
const (
	chunk  = 64 << 10 // the most one read or splice moves; a parked buffer's size
	budget = 16       // chunks a direction moves before other connections get a turn
)

var parkPool = sync.Pool{New: func() any { return new([chunk]byte) }}

// parked counts the buffers out of parkPool (for tests).
var parked atomic.Int64

// half is one direction of a connection.
type half struct {
	pend  []byte       // to write before reading more: the preamble, or buf's bytes
	buf   *[chunk]byte // from parkPool, while pend is in it
	n     int64        // bytes delivered
	last  int64        // loop clock when a byte last moved
	free  int32        // leading bytes of pend that are not the client's (the preamble)
	burst int32        // bytes moved since the source was last found empty (≤ budget chunks)
	eof   bool         // the source ended and the end was passed on
	bulk  bool         // bursts fill chunks: splice them
}

func (h *half) park(b []byte) {
	h.buf = parkPool.Get().(*[chunk]byte)
	parked.Add(1)
	h.pend = h.buf[:copy(h.buf[:], b)]
}

func (h *half) release() {
	h.pend = nil
	if h.buf != nil {
		parkPool.Put(h.buf)
		parked.Add(-1)
		h.buf = nil
	}
}

// pump moves bytes both ways as far as the sockets allow.
func (l *loop) pump(c *Conn) {
	if l.move(c, up) {
		l.move(c, down)
	}
}

// move moves bytes in direction d until the source is empty, the
// destination full, or the budget spent. It returns false if c ended.
func (l *loop) move(c *Conn, d int) bool {
	p := &c.p
	h := &p.dir[d]
	src, dst := d, 1-d
	for turn := 0; ; turn++ {
		if len(h.pend) > 0 && !l.flush(c, d) {
			return false
		}
		if len(h.pend) > 0 || h.eof || p.flags[src]&canRead == 0 || p.flags[dst]&canWrite == 0 {
			return true
		}
		if turn == budget {
			l.requeue(c)
			return true
		}
		var ok bool
		if h.bulk && p.flags[src]&urgent == 0 {
			ok = l.spliceChunk(c, d)
		} else {
			ok = l.readChunk(c, d)
		}
		if !ok {
			return false
		}
	}
}

// flush writes what is pending in direction d.
func (l *loop) flush(c *Conn, d int) bool {
	p := &c.p
	h := &p.dir[d]
	dst := 1 - d
	if p.flags[dst]&canWrite == 0 {
		return true
	}
	n, err := write(c.sock(dst), h.pend)
	if err != nil && err != unix.EAGAIN {
		l.finish(c, failReason(dst))
		return false
	}
	if n > 0 {
		h.pend = h.pend[n:]
		skip := min(n, int(h.free))
		h.free -= int32(skip)
		l.moved(c, d, n-skip)
	}
	if len(h.pend) > 0 {
		p.flags[dst] &^= canWrite
	} else {
		h.release()
	}
	return true
}

// readChunk reads a burst into the loop's buffer and writes it on.
func (l *loop) readChunk(c *Conn, d int) bool {
	p := &c.p
	src, dst := d, 1-d
	n, err := read(c.sock(src), l.buf)
	if n <= 0 {
		return l.noBytes(c, d, err, false)
	}
	w, err := write(c.sock(dst), l.buf[:n])
	if !l.delivered(c, d, n, w, err, l.buf[max(w, 0):n]) {
		return false
	}
	switch {
	case n == len(l.buf):
		p.dir[d].bulk = true
	case p.flags[src]&(peerShut|urgent) == 0:
		// A read stops short of the buffer only when the queue is empty
		// (or at an urgent mark or the FIN, excluded here), and the next
		// byte to arrive brings a new edge: no need for a read to say
		// EAGAIN.
		l.drained(c, d)
	}
	return true
}

// spliceChunk moves a burst from the source to the loop's pipe and on to
// the destination.
func (l *loop) spliceChunk(c *Conn, d int) bool {
	src, dst := d, 1-d
	n, err := splice(c.sock(src), l.pipe[1], chunk)
	if n <= 0 {
		return l.noBytes(c, d, err, true)
	}
	w, err := splice(l.pipe[0], c.sock(dst), n)
	var rest []byte
	if w < n {
		// The pipe must be empty for the next connection: what the
		// destination did not take goes to the loop's buffer, to be
		// parked (or dropped if the write failed).
		rest = l.pipeTo(l.buf[:n-max(w, 0)])
	}
	return l.delivered(c, d, n, w, err, rest)
}

// noBytes handles a read or splice that took nothing from the source:
// EAGAIN (empty), an error, or 0: the end, or for splice possibly an
// urgent mark with the FIN behind it (splice stops at the mark and then
// reports 0), which read tells apart.
func (l *loop) noBytes(c *Conn, d int, err error, spliced bool) bool {
	switch {
	case err == unix.EAGAIN:
		l.drained(c, d)
		return true
	case err != nil:
		l.finish(c, failReason(d))
		return false
	case spliced:
		c.p.dir[d].bulk = false
		return l.readChunk(c, d)
	}
	return l.ended(c, d)
}

// delivered accounts for a write of w of the n bytes taken from the
// source of direction d; rest, what the destination did not take, is
// parked. It returns false if the write failed (c ended).
func (l *loop) delivered(c *Conn, d, n, w int, err error, rest []byte) bool {
	h := &c.p.dir[d]
	if err != nil && err != unix.EAGAIN {
		l.finish(c, failReason(1-d))
		return false
	}
	h.burst += int32(n)
	l.moved(c, d, w)
	if len(rest) > 0 {
		h.park(rest)
		c.p.flags[1-d] &^= canWrite
	}
	return true
}

// pipeTo reads the len(b) bytes left in the loop's pipe into b.
func (l *loop) pipeTo(b []byte) []byte {
	for got := 0; got < len(b); {
		n, err := read(l.pipe[0], b[got:])
		if err != nil || n <= 0 {
			return b[:got] // cannot happen: the bytes are there
		}
		got += n
	}
	return b
}

// drained records that the source of direction d is empty.
func (l *loop) drained(c *Conn, d int) {
	h := &c.p.dir[d]
	c.p.flags[d] &^= canRead | urgent
	h.bulk = h.burst >= chunk
	h.burst = 0
}

// ended passes the source's EOF on; when the other direction has ended
// too, the connection ends.
func (l *loop) ended(c *Conn, d int) bool {
	p := &c.p
	p.dir[d].eof = true
	p.flags[d] &^= canRead
	if p.dir[1-d].eof {
		l.finish(c, Normal)
		return false
	}
	if err := unix.Shutdown(c.sock(1-d), unix.SHUT_WR); err != nil {
		l.finish(c, failReason(1-d))
		return false
	}
	p.halfAt = l.now
	l.schedule(c)
	return true
}

// moved counts n bytes delivered in direction d.
func (l *loop) moved(c *Conn, d, n int) {
	if n <= 0 {
		return
	}
	h := &c.p.dir[d]
	h.n += int64(n)
	h.last = l.now
	ctr := c.p.t.Up
	if d == down {
		ctr = c.p.t.Down
	}
	if ctr != nil {
		ctr.Add(float64(n))
	}
}

func read(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func write(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func splice(from, to, n int) (int, error) {
	for {
		m, err := unix.Splice(from, nil, to, nil, n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		if err != unix.EINTR {
			return int(m), err
		}
	}
}
