package probe

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// bufPool holds the read buffers of running probes: a round over many
// targets reuses them instead of allocating ReadLimit bytes per probe.
var bufPool = sync.Pool{New: func() any { return new([ReadLimit]byte) }}

// longAgo is a deadline in the past: setting it wakes a blocked read or
// write at once.
var longAgo = time.Unix(1, 0)

// Run probes target ("host:port" as configured) once and returns nil when
// it passes. It returns within the Check's Timeout, and at once when ctx
// ends (then with an error wrapping ctx's error); it leaves no goroutine
// behind.
func (p *Prober) Run(ctx context.Context, target string) error {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("target %q: %w", target, err)
	}
	addr := target
	if p.port != "" {
		addr = net.JoinHostPort(host, p.port)
	}
	deadline := time.Now().Add(p.timeout)
	conn, err := p.dial.DialContext(ctx, "tcp", addr)
	if err != nil {
		return cancelled(ctx, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if ctx.Done() != nil {
		// Wake any blocked read or write when ctx ends; registered after
		// SetDeadline so that it cannot be overwritten by it.
		w := &waker{conn: conn}
		w.fired.Add(1)
		stop := context.AfterFunc(ctx, w.wake)
		defer func() {
			if !stop() {
				w.fired.Wait() // wake was started: Run does not return before it ends
			}
		}()
	}
	s := session{conn: conn}
	if p.http == nil && len(p.expect) == 0 {
		return cancelled(ctx, s.send(p.out)) // connecting (and sending) is enough
	}
	buf := bufPool.Get().(*[ReadLimit]byte)
	defer bufPool.Put(buf)
	s.buf = buf[:]
	if p.http != nil {
		err = p.http.run(&s, p, host)
	} else {
		err = p.sendExpect(&s)
	}
	return cancelled(ctx, err)
}

// waker ends a probe's blocked I/O when its context ends.
type waker struct {
	conn  net.Conn
	fired sync.WaitGroup
}

func (w *waker) wake() {
	_ = w.conn.SetDeadline(longAgo)
	w.fired.Done()
}

// cancelled returns err, or an error that says the probe was cut short and
// wraps ctx's error when ctx has ended: such a result says nothing about
// the target.
func cancelled(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("probe cancelled: %w", ctx.Err())
}
