//go:build linux

package evloop

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// pair is a proxied connection as its loop sees it: the client's and the
// target's sockets and the two directions between them. Only the loop
// touches it once Proxy has handed it over.
type pair struct {
	l      *loop
	s      Session
	to     Timeouts
	t      Target  // the target dialled last
	dir    [2]half // up, down
	tm     timer
	nextIn *Conn  // Proxy's hand-over stack
	dialAt int64  // loop clock when the current dial started
	halfAt int64  // loop clock when the first direction ended
	ufd    int32  // the target's socket, -1 when none
	gen    uint32 // dials made; tags the target socket's events

	registered atomic.Bool  // Proxy's epoll_ctl of the client socket is done
	flags      [2]sockFlags // by side
	phase      phase
	kaSet      bool // keepalive is set on the target's socket
	queued     bool // in l.again
	// sampled is the wheel tick (plus one; 0: none) of the last progress
	// look, which sampled each direction's acked (see progress.go).
	sampled uint32
}

type phase uint8

const (
	handedOver phase = iota
	dialing
	relaying
	done
)

// Sides (a socket) and directions (up reads the client and writes the
// target, down the reverse): direction d reads side d.
const (
	client = 0
	target = 1
	up     = 0
	down   = 1
)

// sockFlags is what the loop knows of a socket from its edge-triggered
// events.
type sockFlags uint8

const (
	canRead  sockFlags = 1 << iota
	canWrite           // cleared by EAGAIN
	peerShut           // the peer's FIN came: a short read does not mean empty
	urgent             // an urgent mark is queued: splice stops at it, read steps over
)

func flagsOf(ev uint32) sockFlags {
	var f sockFlags
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		f |= canRead
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		f |= peerShut
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP) != 0 {
		f |= canWrite
	}
	if ev&unix.EPOLLPRI != 0 {
		f |= urgent
	}
	return f
}

// sock returns the socket of a side.
func (c *Conn) sock(side int) int {
	if side == client {
		return int(c.fd)
	}
	return int(c.p.ufd)
}

func failReason(side int) Reason {
	if side == client {
		return ClientError
	}
	return TargetError
}

// event handles what epoll reported for one socket of c. Each event
// carries the socket's whole state at the time (edge-triggered, but the
// mask is computed when epoll_wait returns), so an urgent mark no longer
// reported has been read past.
func (l *loop) event(c *Conn, side int, ev uint32) {
	p := &c.p
	if p.phase == dialing && side == target {
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			err := soError(int(p.ufd))
			if err == nil {
				err = os.NewSyscallError("connect", unix.ECONNRESET)
			}
			l.redial(c, err)
		} else if ev&unix.EPOLLOUT != 0 {
			p.flags[target] = flagsOf(ev)
			l.connected(c)
		}
		return
	}
	if ev&unix.EPOLLERR != 0 {
		// A reset, or keepalive giving up: fatal on an established socket.
		l.finish(c, failReason(side))
		return
	}
	p.flags[side] = p.flags[side]&^urgent | flagsOf(ev)
	if p.phase == relaying {
		l.pump(c)
	}
}

// dial connects to the next target the session offers; when it offers
// none, the connection ends.
func (l *loop) dial(c *Conn) {
	p := &c.p
	p.phase = dialing
	for {
		t, ok := p.s.Next()
		if !ok {
			r := NoHealthyTarget
			if p.gen > 0 {
				r = DialFailed
			}
			l.finish(c, r)
			return
		}
		p.gen++
		p.t = t
		fd, err := l.dialSocket(&p.t)
		if err == nil {
			ev := key(c, target)
			if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				rawClose(fd)
				err = os.NewSyscallError("epoll_ctl", err)
			}
		}
		if err != nil {
			p.s.DialFailed(t, dialError(&t, err))
			continue
		}
		p.ufd, p.dialAt, p.flags[target] = int32(fd), l.now, 0
		l.schedule(c)
		return
	}
}

// redial closes a target socket whose connect failed, and dials the next.
func (l *loop) redial(c *Conn, err error) {
	p := &c.p
	rawClose(int(p.ufd))
	p.ufd = -1
	p.s.DialFailed(p.t, dialError(&p.t, err))
	l.dial(c)
}

func (l *loop) connected(c *Conn) {
	p := &c.p
	p.phase = relaying
	p.s.Connected(p.t, time.Duration(l.now-p.dialAt))
	p.dir[up].last, p.dir[down].last = l.now, l.now
	p.dir[up].pend, p.dir[up].free = p.t.Preamble, int32(len(p.t.Preamble))
	l.schedule(c)
	l.pump(c)
}

// finish ends c: closes both sockets, then reports to the session. The
// first reason wins.
func (l *loop) finish(c *Conn, r Reason) {
	p := &c.p
	if p.phase == done {
		return
	}
	p.phase = done
	l.wheel.remove(c)
	if p.ufd >= 0 {
		rawClose(int(p.ufd))
		p.ufd = -1
	}
	// Proxy registers the client socket after handing c over: closing it
	// before would let its number be reused under that epoll_ctl. Only a
	// connection ended as soon as it is adopted can meet this window of a
	// few hundred nanoseconds.
	for !p.registered.Load() {
		runtime.Gosched()
	}
	l.pairs[c.fd] = nil
	rawClose(int(c.fd))
	p.dir[up].release(l)
	p.dir[down].release(l)
	s := p.s
	p.s, p.t = nil, Target{} // a Handle may keep c: drop what it refers to
	s.Done(r, p.dir[up].n, p.dir[down].n)
	l.state.Add(-1)
	if l.pool.stopping.Load() {
		l.yield = true // the loop may exit now
	}
}

// schedule files c in the wheel under its earliest deadline, when that
// is earlier than where it is filed: deadlines only move earlier when the
// phase changes (traffic moves them later, which the wheel finds out
// lazily).
func (l *loop) schedule(c *Conn) {
	due, _ := c.deadline()
	if due == never || (c.p.tm.slot >= 0 && c.p.tm.due <= due) {
		return
	}
	l.wheel.remove(c)
	l.wheel.add(c, due)
	if due < l.armed {
		l.yield = true // poll must return so that run arms the earlier deadline
	}
}

// expire is called by the wheel when c's slot comes up.
func (l *loop) expire(c *Conn) {
	due, r := c.deadline()
	switch {
	case due > l.now:
		if due != never {
			l.wheel.add(c, due)
		}
	case r == dialTimedOut:
		l.redial(c, os.ErrDeadlineExceeded)
	case r == keepAliveDue:
		c.p.kaSet = true
		_ = setKeepAlive(int(c.p.ufd), c.p.t.KeepAlive) // an error here shows in the I/O
		l.schedule(c)
	case (r == IdleTimeout || r == HalfCloseTimeout) && !l.progressLook(c, r):
		// Bytes are still leaving for a slow reader: filed again.
	default:
		l.finish(c, r)
	}
}

// Deadlines that are not an end: a dial timeout (the next target is
// dialled) and the time to set keepalive on the target's socket.
const (
	dialTimedOut Reason = 0
	keepAliveDue Reason = 255
)

// keepAliveDelay is how long a connection lasts before keepalive is set
// on the socket it dialled. Four setsockopt calls are a tenth of the CPU
// time of a short proxied connection, which never needs keepalive; the
// first probe of a connection idle from its start comes keepAliveDelay
// later than it would, the next ones on time. (The client's socket has
// keepalive from the start: it inherits it from the listener.)
const keepAliveDelay = time.Second

// deadline returns c's earliest deadline and what happens then.
func (c *Conn) deadline() (int64, Reason) {
	p := &c.p
	due, r := never, Reason(0)
	consider := func(at int64, why Reason) {
		if at < due {
			due, r = at, why
		}
	}
	if p.to.MaxDuration > 0 {
		consider(c.accepted+int64(p.to.MaxDuration), MaxDuration)
	}
	switch p.phase {
	case dialing:
		if p.t.DialTimeout > 0 {
			consider(p.dialAt+int64(p.t.DialTimeout), dialTimedOut)
		}
	case relaying:
		// Half-close first: when both fall due together, it is the more
		// precise reason. A direction's end counts as traffic for idle.
		if p.to.HalfClose > 0 && p.dir[up].eof != p.dir[down].eof {
			open := up
			if p.dir[up].eof {
				open = down
			}
			consider(max(p.dir[open].last, p.halfAt)+int64(p.to.HalfClose), HalfCloseTimeout)
		}
		if p.to.Idle > 0 {
			consider(max(p.dir[up].last, p.dir[down].last, p.halfAt)+int64(p.to.Idle), IdleTimeout)
		}
		if p.t.KeepAlive.Enable && !p.kaSet {
			consider(p.dialAt+int64(keepAliveDelay), keepAliveDue)
		}
	}
	return due, r
}
