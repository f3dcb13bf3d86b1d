//go:build linux

package evloop

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Proxy when the loop it would use has exited:
// its pool was released and had emptied. Proxy the connection another
// way (Conn.TCPConn).
var ErrClosed = errors.New("evloop: the pool's loops have exited")

// Loops is a pool of event loops, one per P (GOMAXPROCS at start). A
// connection stays on the loop it was handed to; loops share no lock.
type Loops struct {
	loops    []*loop
	next     atomic.Uint32 // round robin over loops
	refs     int           // guarded by shared.mu
	stopping atomic.Bool
}

// shared is the process-wide pool of Acquire.
var shared struct {
	mu sync.Mutex
	l  *Loops
}

// Acquire returns the process-wide pool, starting it if needed, and takes
// a reference to it. Each Acquire needs a Release.
func Acquire() (*Loops, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.l == nil {
		l, err := start(runtime.GOMAXPROCS(0))
		if err != nil {
			return nil, err
		}
		shared.l = l
	}
	shared.l.refs++
	return shared.l, nil
}

// Release drops a reference. Once the last is dropped, each loop exits
// as soon as it owns no connection: released loops never cut a
// connection (a config reload releases the old config's reference after
// the new one acquired, so the pool carries on). A later Acquire starts
// a new pool.
func (ls *Loops) Release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	ls.refs--
	if ls.refs > 0 {
		return
	}
	if shared.l == ls {
		shared.l = nil
	}
	ls.stop()
}

// Released reports whether the pool's last reference was dropped: its
// loops exit once they own no connection.
func (ls *Loops) Released() bool { return ls.stopping.Load() }

// start starts n loops.
func start(n int) (*Loops, error) {
	ls := &Loops{loops: make([]*loop, 0, n)}
	for range n {
		l, err := newLoop(ls)
		if err != nil {
			for _, l := range ls.loops {
				l.closeFDs()
			}
			return nil, err
		}
		ls.loops = append(ls.loops, l)
	}
	for _, l := range ls.loops {
		go l.run()
	}
	return ls, nil
}

// stop makes each loop exit once it owns no connection.
func (ls *Loops) stop() {
	ls.stopping.Store(true)
	for _, l := range ls.loops {
		l.post(mail{}) // wakes it: it checks whether it may exit
	}
}

// Handle lets any goroutine end a proxied connection.
type Handle struct{ c *Conn }

// Close ends the connection with reason r (TargetDown, Admin, Shutdown)
// unless it ended already. It returns at once: the loop closes the
// sockets, then calls the session's Done with the first reason given.
func (h Handle) Close(r Reason) {
	if h.c != nil {
		h.c.p.l.post(mail{c: h.c, r: r})
	}
}

// Proxy hands c to a loop, which proxies it to the targets s offers, with
// the timeouts t. From then on the loop owns the socket (c.Close does
// nothing) and every outcome reaches s, Done last; s's methods may run
// before Proxy returns, so set s up before the call. An error means that
// no loop took c (it was converted or closed, or the pool has exited): c
// is still the caller's.
func (ls *Loops) Proxy(c *Conn, s Session, t Timeouts) (Handle, error) {
	if err := c.take(); err != nil {
		return Handle{}, err
	}
	// Round robin: by fd would put every client on one loop, client and
	// target sockets taking turns at the lowest free numbers.
	l := ls.loops[int(ls.next.Add(1))%len(ls.loops)]
	if !l.enter() {
		c.giveBack()
		return Handle{}, ErrClosed
	}
	p := &c.p
	p.l, p.s, p.to, p.ufd = l, s, t, -1
	p.tm.slot = -1
	l.push(c)
	// Registering the client socket is also what wakes the loop: the
	// socket is writable, so the edge comes at once. That needs c to be
	// pushed first (see loop.adopt).
	ev := key(c, client)
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev)
	p.registered.Store(true)
	if err != nil {
		// No event will ever come for the client: have the loop end it.
		l.post(mail{c: c, r: ClientError})
	}
	return Handle{c}, nil
}

// CloseAll ends every connection the pool's loops own with reason r and
// returns when their sessions' Done have returned. Not from a Session
// method: it would wait for its own loop.
func (ls *Loops) CloseAll(r Reason) { ls.CloseWhere(r, nil) }

// CloseWhere ends, with reason r, every connection the pool's loops own
// whose session match accepts (every one, if match is nil), and returns
// how many, when their sessions' Done have returned. Each loop runs match
// on its own goroutine for each of its connections, so it may read what
// the session's methods wrote without a lock, and must be as quick as
// they are (compare a field). Not from a Session method: it would wait
// for its own loop.
func (ls *Loops) CloseWhere(r Reason, match func(Session) bool) int {
	var wg sync.WaitGroup
	var n atomic.Int64
	for _, l := range ls.loops {
		wg.Add(1)
		if !l.post(mail{all: true, match: match, count: &n, r: r, ack: &wg}) {
			wg.Done()
		}
	}
	wg.Wait()
	return int(n.Load())
}

// Active returns the number of connections the pool's loops own.
func (ls *Loops) Active() int {
	n := 0
	for _, l := range ls.loops {
		n += int(l.state.Load() &^ closedBit)
	}
	return n
}
