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
// loop's pipe, in the kernel, up to the pipe's 1 MiB per step.
//
// When the destination takes only part, the source is no longer read
// until the destination has taken the rest, which is parked: from the
// buffer, in a 64 KiB buffer from a pool; from the pipe, in the pipe
// itself, handed to the connection while the loop takes an empty one from
// its spares (no copy; two descriptors until the destination drains it,
// when it goes back to the spares). An idle connection holds neither; a
// slow one at most one per direction.
const (
	bufSize   = 64 << 10 // the loop's read buffer; a parked buffer
	turnBytes = 1 << 20  // what a direction moves before other connections get a turn
)

var parkPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// parked counts the parked buffers and pipes (for tests).
var parked atomic.Int64

// SplicedBytes counts the bytes every loop has moved by splice, so that
// tests (and a debugger) can tell that bulk takes it. One atomic add per
// splice step of up to a pipe's size.
var SplicedBytes atomic.Uint64

// half is one direction of a connection.
type half struct {
	pend   []byte         // to write before reading more: the preamble, or parked bytes
	pooled *[bufSize]byte // pend's buffer, from parkPool
	pp     pipe           // a parked pipe, holding piped bytes
	piped  int32          // bytes in pp; 0: no pipe
	n      int64          // bytes delivered
	last   int64          // loop clock when a byte last moved
	free   int32          // leading bytes of pend that are not the client's (the preamble)
	burst  int32          // bytes moved since the source was last found empty, up to bufSize
	acked  uint32         // the destination's tcpi_bytes_acked at the last progress look (low bits)
	eof    bool           // the source ended and the end was passed on
	bulk   bool           // bursts fill the buffer: splice them
}

// parkBytes keeps b, which the destination did not take.
func (h *half) parkBytes(b []byte) {
	parked.Add(1)
	h.pooled = parkPool.Get().(*[bufSize]byte)
	h.pend = h.pooled[:copy(h.pooled[:], b)]
}

// release drops what is parked: once written, or when the connection
// ends (a pipe still holding bytes is closed, not reused).
func (h *half) release(l *loop) {
	if h.pooled != nil {
		parked.Add(-1)
		parkPool.Put(h.pooled)
		h.pooled = nil
	}
	h.pend = nil
	if h.pp.size != 0 {
		parked.Add(-1)
		if h.piped == 0 {
			l.putPipe(h.pp)
		} else {
			h.pp.close()
		}
		h.pp, h.piped = pipe{}, 0
	}
}

// pump moves bytes both ways as far as the sockets allow.
func (l *loop) pump(c *Conn) {
	if l.move(c, up) {
		l.move(c, down)
	}
}

// move moves bytes in direction d until the source is empty, the
// destination full, or the turn's bytes moved. It returns false if c
// ended.
func (l *loop) move(c *Conn, d int) bool {
	p := &c.p
	h := &p.dir[d]
	src, dst := d, 1-d
	for start := h.n; ; {
		if p.flags[dst]&canWrite == 0 || h.eof && !h.parked() {
			return true
		}
		if h.n-start >= turnBytes {
			l.requeue(c)
			return true
		}
		var ok bool
		switch {
		case h.parked():
			ok = l.flush(c, d)
		case p.flags[src]&canRead == 0:
			return true
		case h.bulk && p.flags[src]&urgent == 0:
			ok = l.spliceStep(c, d)
		default:
			ok = l.readBurst(c, d)
		}
		if !ok {
			return false
		}
	}
}

func (h *half) parked() bool { return len(h.pend) > 0 || h.piped > 0 }

// flush writes what is parked in direction d, or part of it.
func (l *loop) flush(c *Conn, d int) bool {
	h := &c.p.dir[d]
	dst := 1 - d
	var (
		n   int
		err error
	)
	if h.piped > 0 {
		n, err = rawSplice(int(h.pp.r), c.sock(dst), int(h.piped))
		h.piped -= int32(max(n, 0))
	} else if n, err = rawWrite(c.sock(dst), h.pend); n > 0 {
		h.pend = h.pend[n:]
		skip := min(n, int(h.free))
		h.free -= int32(skip)
		n -= skip
	}
	if !l.wrote(c, d, n, err) {
		return false
	}
	if !h.parked() {
		h.release(l)
	}
	return true
}

// readBurst reads a burst into the loop's buffer and writes it on.
func (l *loop) readBurst(c *Conn, d int) bool {
	p := &c.p
	h := &p.dir[d]
	src, dst := d, 1-d
	n, err := rawRead(c.sock(src), l.buf)
	if n <= 0 {
		return l.noBytes(c, d, err, false)
	}
	w, err := rawWrite(c.sock(dst), l.buf[:n])
	if !l.delivered(c, d, n, w, err) {
		return false
	}
	if w < n {
		h.parkBytes(l.buf[max(w, 0):n])
	}
	switch {
	case n == len(l.buf):
		h.bulk = true
	case p.flags[src]&(peerShut|urgent) == 0:
		// A read stops short of the buffer only when the queue is empty
		// (or at an urgent mark or the FIN, excluded here), and the next
		// byte to arrive brings a new edge: no need for a read to say
		// EAGAIN.
		l.drained(c, d)
	}
	return true
}

// spliceStep moves a burst from the source through the loop's pipe to
// the destination.
func (l *loop) spliceStep(c *Conn, d int) bool {
	h := &c.p.dir[d]
	src, dst := d, 1-d
	n, err := rawSplice(c.sock(src), int(l.pipe.w), int(l.pipe.size))
	if n <= 0 {
		return l.noBytes(c, d, err, true)
	}
	w, err := rawSplice(int(l.pipe.r), c.sock(dst), n)
	SplicedBytes.Add(uint64(n))
	if w < n {
		// The pipe must be empty for the next connection.
		rest := n - max(w, 0)
		if full, ok := l.swapPipe(); ok {
			parked.Add(1)
			h.pp, h.piped = full, int32(rest)
		} else { // no descriptor for a new pipe: copy the rest out
			h.pend = l.pipeTo(h.hold(rest))
		}
	}
	return l.delivered(c, d, n, w, err)
}

// hold returns a parked buffer for k bytes (rare: when no pipe could be
// made, so possibly beyond a pooled buffer's size).
func (h *half) hold(k int) []byte {
	if k <= bufSize {
		parked.Add(1)
		h.pooled = parkPool.Get().(*[bufSize]byte)
		return h.pooled[:k]
	}
	return make([]byte, k)
}

// pipeTo reads the len(b) bytes left in the loop's pipe into b.
func (l *loop) pipeTo(b []byte) []byte {
	for got := 0; got < len(b); {
		n, err := rawRead(int(l.pipe.r), b[got:])
		if err != nil || n <= 0 {
			return b[:got] // cannot happen: the bytes are there
		}
		got += n
	}
	return b
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
		return l.readBurst(c, d)
	}
	return l.ended(c, d)
}

// delivered accounts for a write of w of the n bytes taken from the
// source of direction d (the caller has parked the rest). It returns
// false if the write failed: c ended.
func (l *loop) delivered(c *Conn, d, n, w int, err error) bool {
	h := &c.p.dir[d]
	h.burst = int32(min(int(h.burst)+n, bufSize)) // only compared with bufSize
	return l.wrote(c, d, w, err)
}

// wrote accounts for a write of n bytes in direction d. Only EAGAIN says
// the destination is full: a write can also stop short for a signal
// (splice checks for one between pages), and then no edge would come to
// say it is writable again.
func (l *loop) wrote(c *Conn, d, n int, err error) bool {
	switch err {
	case nil:
	case unix.EAGAIN:
		c.p.flags[1-d] &^= canWrite
	default:
		l.finish(c, failReason(1-d))
		return false
	}
	l.moved(c, d, n)
	return true
}

// drained records that the source of direction d is empty.
func (l *loop) drained(c *Conn, d int) {
	h := &c.p.dir[d]
	c.p.flags[d] &^= canRead | urgent
	h.bulk = h.burst >= bufSize
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
	if err := rawShutdownWrite(c.sock(1 - d)); err != nil {
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
