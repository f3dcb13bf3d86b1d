package relay

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one proxied connection on the goroutine path: the client and
// target sockets, the bytes moved each way, its timeouts and the reason it
// ended. Run copies until both directions are done; Close ends it early
// from any goroutine.
type Conn struct {
	client, target net.Conn
	timeouts       Timeouts
	accepted       time.Time
	up, down       meter

	// When each direction ended (since accept; 0 while it flows).
	upEnd, downEnd atomic.Int64
	reason         atomic.Uint32
	closeOnce      sync.Once

	mu    sync.Mutex // guards the timer and what it has seen
	timer *time.Timer
	seen  activity
	acks  acks
	done  bool
}

// meter counts one direction's bytes: for the connection (the access log)
// and for the target's metrics.
type meter struct {
	n      atomic.Int64
	metric Counter
}

func (m *meter) add(n int) {
	m.n.Add(int64(n))
	m.metric.Add(float64(n))
}

// New prepares the proxying of client to target. accepted is when the
// client was accepted: MaxDuration counts from then. upBytes and downBytes
// count the bytes client → target and target → client as they move.
func New(client, target net.Conn, t Timeouts, accepted time.Time, upBytes, downBytes Counter) *Conn {
	c := &Conn{client: client, target: target, timeouts: t, accepted: accepted}
	c.up.metric, c.down.metric = upBytes, downBytes
	return c
}

// Run copies both ways until both directions have ended, or one failed,
// or a timeout or Close ended the connection, and closes both sockets.
// It returns why the connection ended.
func (c *Conn) Run() Reason {
	c.startTimer()
	var wg sync.WaitGroup
	wg.Add(1)
	go c.copyUpstream(&wg)
	c.copy(c.client, c.target, &c.down, &c.downEnd, TargetError, ClientError)
	wg.Wait()
	c.stopTimer()
	c.Close(Normal)
	return Reason(c.reason.Load())
}

// copyUpstream copies client to target; it runs on its own goroutine
// while Run's goroutine copies the other way.
func (c *Conn) copyUpstream(wg *sync.WaitGroup) {
	defer wg.Done()
	c.copy(c.target, c.client, &c.up, &c.upEnd, ClientError, TargetError)
}

// copy moves src to dst until EOF and records when the direction ended;
// a failure ends the connection, blamed on the side whose socket failed.
func (c *Conn) copy(dst, src net.Conn, m *meter, end *atomic.Int64, srcFault, dstFault Reason) {
	err := copyHalf(dst, src, m)
	if err == nil {
		end.Store(int64(max(time.Since(c.accepted), 1)))
		c.halfClosed()
		return
	}
	if readFailed(err) {
		c.Close(srcFault)
	} else {
		c.Close(dstFault)
	}
}

// Close ends the connection with reason r, unless it has already ended
// or been given a reason: the first reason wins. Any goroutine may call it.
func (c *Conn) Close(r Reason) {
	c.reason.CompareAndSwap(0, uint32(r))
	c.closeOnce.Do(func() {
		_ = c.client.Close()
		_ = c.target.Close()
	})
}

// Bytes returns the bytes moved so far: client → target (up) and target →
// client (down).
func (c *Conn) Bytes() (up, down int64) { return c.up.n.Load(), c.down.n.Load() }

// startTimer arms the timeouts' timer, if any is on.
func (c *Conn) startTimer() {
	if !c.timeouts.any() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, next := c.timeouts.expired(time.Since(c.accepted), &c.seen, 0, 0)
	c.timer = time.AfterFunc(next, c.check)
}

// check is the timer: it closes an expired connection or looks again
// later. It never runs per byte: see checksPerTimeout.
func (c *Conn) check() {
	if r := c.expired(); r != 0 {
		c.Close(r)
	}
}

// expired looks at the connection and re-arms the timer unless it must
// close, and then returns why.
func (c *Conn) expired() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return 0
	}
	now := time.Since(c.accepted)
	upEnd, downEnd := time.Duration(c.upEnd.Load()), time.Duration(c.downEnd.Load())
	c.seen.observe(now, c.up.n.Load(), c.down.n.Load())
	r, next := c.timeouts.expired(now, &c.seen, upEnd, downEnd)
	if r == IdleTimeout || r == HalfCloseTimeout {
		if quiet, recheck := c.stillQuiet(now, r); !quiet {
			if recheck > 0 {
				c.timer.Reset(recheck)
				return 0
			}
			r, next = c.timeouts.expired(now, &c.seen, upEnd, downEnd)
		}
	}
	if r != 0 {
		c.done = true
		return r
	}
	c.timer.Reset(next)
	return 0
}

// halfClosed re-arms the timer after a direction ended: the half-close
// timeout may now be the nearest.
func (c *Conn) halfClosed() {
	if c.timeouts.HalfClose <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done && c.timer != nil {
		c.timer.Reset(0)
	}
}

func (c *Conn) stopTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
}
