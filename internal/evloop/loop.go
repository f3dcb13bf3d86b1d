//go:build linux

package evloop

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A loop owns its connections' sockets in an epoll set of its own, and
// runs on one goroutine. That epoll fd is itself registered with Go's
// netpoller: when nothing is ready the goroutine parks there like any
// socket reader, so no thread blocks in epoll_wait and the runtime
// schedules the loop like any goroutine.
//
// Events are edge-triggered and registered once per socket (no
// epoll_ctl to re-arm): the loop remembers per socket what it may do
// (read, write) and forgets it on EAGAIN.
type loop struct {
	pool   *Loops
	epfd   int
	file   *os.File // epfd, as the netpoller sees it
	rc     syscall.RawConn
	pollFn func(uintptr) bool // l.poll, bound once: a method value allocates
	expFn  func(*Conn)        // l.expire, bound once
	evfd   int                // eventfd: wakes the loop for mail
	pipe   pipe               // for splice, shared by all connections
	spares []pipe             // empty pipes, for the next connection to stall
	buf    []byte             // for short bursts, shared by all connections
	events []unix.EpollEvent

	now    int64 // the loop's clock, read once per wake-up
	armed  int64 // the deadline set on file, or never
	yield  bool  // poll must return: re-arm the deadline or check for exit
	broken bool  // the netpoller refused the epoll fd: end everything
	wheel  wheel
	pairs  []*Conn // by client fd
	again  []*Conn // connections with work left after their turn
	again2 []*Conn // again's other buffer

	sa4 unix.RawSockaddrInet4 // for dialSocket
	sa6 unix.RawSockaddrInet6

	incoming atomic.Pointer[Conn] // handed over by Proxy, linked by p.nextIn
	state    atomic.Int64         // connections owned, plus closedBit

	mu     sync.Mutex
	mail   []mail
	woken  bool // an eventfd write is pending
	closed bool // exited: no mail, evfd closed
}

// mail is a request to a loop from another goroutine.
type mail struct {
	c     *Conn              // the connection to close
	all   bool               // close every connection match accepts (neither: only wake the loop)
	match func(Session) bool // nil: all of them
	count *atomic.Int64      // adds the number closed, if not nil
	r     Reason
	ack   *sync.WaitGroup
}

const (
	closedBit  = 1 << 62
	eventsMax  = 128
	mailTag    = 2 // epoll data tag of the eventfd (see key)
	socketMask = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLPRI | unix.EPOLLET
)

func newLoop(pool *Loops) (l *loop, err error) {
	l = &loop{pool: pool, epfd: -1, evfd: -1, pipe: pipe{r: -1, w: -1}, armed: never,
		buf: make([]byte, bufSize), events: make([]unix.EpollEvent, eventsMax)}
	defer func() {
		if err != nil {
			l.closeFDs()
		}
	}()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Nonblocking, so that os.NewFile registers it with the netpoller.
	if err = unix.SetNonblock(l.epfd, true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	// Each write to an eventfd wakes an edge-triggered watcher, so the
	// counter is never read back (it cannot overflow in practice).
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Pad: mailTag}
	if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	if l.pipe, err = newPipe(); err != nil {
		return nil, err
	}
	l.file = os.NewFile(uintptr(l.epfd), "evloop")
	if l.rc, err = l.file.SyscallConn(); err != nil {
		return nil, err
	}
	l.pollFn, l.expFn = l.poll, l.expire
	return l, nil
}

// closeFDs closes what newLoop opened.
func (l *loop) closeFDs() {
	if l.evfd >= 0 {
		unix.Close(l.evfd)
	}
	l.pipe.close()
	for _, p := range l.spares {
		p.close()
	}
	if l.file != nil {
		l.file.Close()
	} else if l.epfd >= 0 {
		unix.Close(l.epfd)
	}
}

// run is the loop's goroutine: wait for events or the next timer, handle
// them, until the pool is released and the loop owns no connection.
func (l *loop) run() {
	for {
		l.arm()
		err := l.rc.Read(l.pollFn)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// Cannot happen (only exit closes the file); if it did, the
			// loop could not wait any more: end its connections and exit.
			l.broken = true
			l.adopt()
			l.closeWhere(Shutdown, nil)
		}
		l.now = mono()
		l.wheel.expire(l.now, l.expFn)
		if (l.broken || l.pool.stopping.Load()) && l.state.CompareAndSwap(0, closedBit) {
			l.exit()
			return
		}
	}
}

// arm sets the file's read deadline to the next timer, if it changed.
func (l *loop) arm() {
	due := l.wheel.next()
	if due == l.armed {
		return
	}
	l.armed = due
	var t time.Time
	if due != never {
		t = epoch.Add(time.Duration(due))
	}
	_ = l.file.SetReadDeadline(t)
}

// poll runs inside RawConn.Read: it takes what epoll has ready without
// waiting, and returns false to park in the netpoller when nothing is.
func (l *loop) poll(uintptr) bool {
	for {
		n, err := rawEpollPoll(l.epfd, l.events)
		if err != nil {
			n = 0 // EINTR: as if nothing was ready; the netpoller wakes us again
		}
		if n > 0 {
			l.now = mono()
			l.adopt()
			for i := range l.events[:n] {
				l.dispatch(&l.events[i])
			}
		}
		l.runAgain()
		if l.yield || len(l.again) > 0 {
			l.yield = false
			return true // to run, expire timers, re-arm; then poll again
		}
		if n < len(l.events) {
			return false
		}
	}
}

// key is the epoll data of a connection's socket: the client's fd finds
// the connection, the tag says which socket (0: the client; odd: the
// target, with the dial attempt's generation, so that an event of a
// target socket closed during the same epoll_wait batch is ignored).
func key(c *Conn, side int) unix.EpollEvent {
	ev := unix.EpollEvent{Events: socketMask, Fd: c.fd}
	if side == target {
		ev.Pad = int32(c.p.gen<<1 | 1)
	}
	return ev
}

func (l *loop) dispatch(ev *unix.EpollEvent) {
	if ev.Pad == mailTag {
		l.readMail()
		return
	}
	fd := int(ev.Fd)
	if fd >= len(l.pairs) || l.pairs[fd] == nil {
		return // its connection ended earlier in this batch
	}
	c := l.pairs[fd]
	side := int(ev.Pad & 1)
	if side == target && uint32(ev.Pad)>>1 != c.p.gen {
		return
	}
	l.event(c, side, ev.Events)
}

// adopt takes the connections Proxy handed over since the last time.
// Proxy pushes a connection before it registers its socket, so every
// connection an event names is adopted by the time the event is seen.
func (l *loop) adopt() {
	for c := l.incoming.Swap(nil); c != nil; {
		next := c.p.nextIn
		c.p.nextIn = nil
		fd := int(c.fd)
		if fd >= len(l.pairs) {
			l.pairs = append(l.pairs, make([]*Conn, fd+1-len(l.pairs)+len(l.pairs)/2)...)
		}
		l.pairs[fd] = c
		l.dial(c)
		c = next
	}
}

// push hands c to the loop (any goroutine).
func (l *loop) push(c *Conn) {
	for {
		head := l.incoming.Load()
		c.p.nextIn = head
		if l.incoming.CompareAndSwap(head, c) {
			return
		}
	}
}

// enter counts a connection in, unless the loop has exited.
func (l *loop) enter() bool {
	for {
		v := l.state.Load()
		if v&closedBit != 0 {
			return false
		}
		if l.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// post queues m for the loop and wakes it; false if the loop has exited.
func (l *loop) post(m mail) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.mail = append(l.mail, m)
	if !l.woken {
		l.woken = true
		one := [8]byte{1} // the eventfd counter is a native-endian uint64; any non-zero value wakes
		_, _ = unix.Write(l.evfd, one[:])
	}
	return true
}

func (l *loop) readMail() {
	l.mu.Lock()
	ms := l.mail
	l.mail, l.woken = nil, false
	l.mu.Unlock()
	// A mail may name a connection handed over just before it was posted:
	// adopting after taking the mail sees it.
	l.adopt()
	for _, m := range ms {
		if m.c != nil {
			l.finish(m.c, m.r)
		} else if m.all {
			n := l.closeWhere(m.r, m.match)
			if m.count != nil {
				m.count.Add(int64(n))
			}
		}
		if m.ack != nil {
			m.ack.Done()
		}
	}
	if l.pool.stopping.Load() {
		l.yield = true
	}
}

// closeWhere ends the connections whose session match accepts (all of
// them with a nil match) and returns how many.
func (l *loop) closeWhere(r Reason, match func(Session) bool) int {
	n := 0
	for _, c := range l.pairs {
		if c != nil && (match == nil || match(c.p.s)) {
			l.finish(c, r)
			n++
		}
	}
	return n
}

// exit releases the loop's descriptors; it owns no connection any more.
func (l *loop) exit() {
	l.mu.Lock()
	l.closed = true
	ms := l.mail
	l.mail = nil
	l.mu.Unlock()
	for _, m := range ms {
		if m.ack != nil {
			m.ack.Done()
		}
	}
	l.closeFDs()
}

// requeue gives c another turn after the other connections' events.
func (l *loop) requeue(c *Conn) {
	if !c.p.queued {
		c.p.queued = true
		l.again = append(l.again, c)
	}
}

func (l *loop) runAgain() {
	if len(l.again) == 0 {
		return
	}
	list := l.again
	l.again = l.again2[:0]
	for _, c := range list {
		c.p.queued = false
		if c.p.phase == relaying {
			l.pump(c)
		}
	}
	clear(list)
	l.again2 = list[:0]
}

// epoch and mono are the loops' clock: monotonic nanoseconds.
var epoch = time.Now()

func mono() int64 { return int64(time.Since(epoch)) }
