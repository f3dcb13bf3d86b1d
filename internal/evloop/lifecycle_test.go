//go:build linux

package evloop

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ticker writes a byte to c every interval until stop is closed.
func ticker(c net.Conn, interval time.Duration, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(interval):
			if _, err := c.Write([]byte{'.'}); err != nil {
				return
			}
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	// Margins for a loaded machine: a byte every 20 ms against 250 ms.
	const idle = 250 * time.Millisecond
	f := newFixture(t, ls, Timeouts{Idle: idle}, func() *session { return newSession(ts.target()) })

	// Traffic in either direction keeps it open: a byte every 20 ms, up
	// then down, for two idle periods each.
	c, s := f.dial()
	tc := ts.accept(t)
	go io.Copy(io.Discard, tc)
	go io.Copy(io.Discard, c)
	for _, from := range []net.Conn{c, tc} {
		stop := make(chan struct{})
		go ticker(from, 20*time.Millisecond, stop)
		s.notDone(t, 2*idle, "bytes kept moving")
		close(stop)
	}
	// Then silence ends it, about idle later.
	start := time.Now()
	r := s.wait(t, 5*time.Second)
	if r.r != IdleTimeout {
		t.Fatalf("Done(%v), want idle_timeout", r.r)
	}
	if d := time.Since(start); d > idle+500*time.Millisecond {
		t.Errorf("ended %v after the last byte, want about %v", d, idle)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the client's socket is still open")
	}
}

func TestHalfCloseTimeout(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	const hc = 250 * time.Millisecond
	f := newFixture(t, ls, Timeouts{HalfClose: hc, Idle: time.Hour}, func() *session { return newSession(ts.target()) })

	// The client has ended its side; the target streaming keeps the
	// connection open.
	c, s := f.dial()
	tc := ts.accept(t)
	go io.Copy(io.Discard, c)
	c.CloseWrite()
	if _, err := io.ReadAll(tc); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go ticker(tc, 20*time.Millisecond, stop)
	s.notDone(t, 2*hc, "the open direction kept moving")
	close(stop)
	if r := s.wait(t, 5*time.Second); r.r != HalfCloseTimeout {
		t.Fatalf("Done(%v), want half_close_timeout", r.r)
	}

	// Without a half-close, the same silence is no reason to end.
	c, s = f.dial()
	ts.accept(t)
	c.Write([]byte("x"))
	s.notDone(t, 2*hc, "no direction has ended")
	s.h.Close(Admin)
	s.wait(t, 5*time.Second)
}

func TestMaxDuration(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	const maxDur = 150 * time.Millisecond
	f := newFixture(t, ls, Timeouts{MaxDuration: maxDur, Idle: time.Hour}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	go io.Copy(io.Discard, tc)
	stop := make(chan struct{})
	defer close(stop)
	go ticker(c, 10*time.Millisecond, stop) // busy: max duration ends it anyway
	start := time.Now()
	r := s.wait(t, 5*time.Second)
	if r.r != MaxDuration {
		t.Fatalf("Done(%v), want max_duration", r.r)
	}
	if d := time.Since(start); d < maxDur-20*time.Millisecond {
		t.Errorf("ended after %v, want at least %v", d, maxDur)
	}
}

func TestCloseFromOtherGoroutinesReportsOneReason(t *testing.T) {
	ls := testLoops(t, 2)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	var wg sync.WaitGroup
	for _, r := range []Reason{Admin, TargetDown, Admin, Shutdown} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.h.Close(r)
		}()
	}
	wg.Wait()
	r := s.wait(t, 5*time.Second)
	switch r.r {
	case Admin, TargetDown, Shutdown:
	default:
		t.Fatalf("Done(%v), want one of the reasons given", r.r)
	}
	s.h.Close(Admin) // after the end: nothing happens
	s.notDone(t, 50*time.Millisecond, "it ended already")
	if n := s.dones.Load(); n != 1 {
		t.Fatalf("Done called %d times, want 1", n)
	}
	for _, conn := range []net.Conn{c, tc} {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("read after Close: %v, want the socket closed", err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestResetIsAttributedToItsSide(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	for _, tc := range []struct {
		name  string
		reset func(client, target *net.TCPConn) *net.TCPConn
		want  Reason
	}{
		{"client", func(c, _ *net.TCPConn) *net.TCPConn { return c }, ClientError},
		{"target", func(_, tc *net.TCPConn) *net.TCPConn { return tc }, TargetError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := f.dial()
			tgt := ts.accept(t)
			c.Write([]byte("hi"))
			io.ReadFull(tgt, make([]byte, 2))
			rst := tc.reset(c, tgt)
			rst.SetLinger(0)
			rst.Close() // RST
			if r := s.wait(t, 5*time.Second); r.r != tc.want {
				t.Fatalf("Done(%v), want %v", r.r, tc.want)
			}
		})
	}
}

func TestClientLeavingDuringTheDialEndsIt(t *testing.T) {
	ls := testLoops(t, 1)
	hole := Target{Addr: blackHole(t), DialTimeout: 10 * time.Second}
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(hole) })
	c, s := f.dial()
	c.SetLinger(0)
	c.Close()
	if r := s.wait(t, 5*time.Second); r.r != ClientError {
		t.Fatalf("Done(%v), want client_error", r.r)
	}
	if errs := s.failures(); len(errs) != 0 {
		t.Fatalf("DialFailed reported %v for a dial the client abandoned", errs)
	}
}

func TestCloseRightAfterProxy(t *testing.T) {
	ls := testLoops(t, 2)
	hole := Target{Addr: blackHole(t), DialTimeout: 10 * time.Second}
	ln := listen(t)
	defer ln.Close()
	for i := range 200 {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s := newSession(hole)
		h, err := ls.Proxy(nc.(*Conn), s, Timeouts{})
		if err != nil {
			t.Fatal(err)
		}
		h.Close(Admin) // before the loop has adopted it, as often as not
		if r := s.wait(t, 5*time.Second); r.r != Admin {
			t.Fatalf("connection %d: Done(%v), want admin", i, r.r)
		}
		client.Close()
	}
}

// TestHalfCloseWinsATieWithIdle: a client that sends its last bytes and
// its end to a silent target has both timeouts due at once when they are
// equal; half-close is the precise reason (as on the goroutine path).
func TestHalfCloseWinsATieWithIdle(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	const d = 200 * time.Millisecond
	f := newFixture(t, ls, Timeouts{Idle: d, HalfClose: d}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	go io.Copy(io.Discard, tc)
	c.Write([]byte("abc"))
	c.CloseWrite()
	if r := s.wait(t, 5*time.Second); r.r != HalfCloseTimeout || r.up != 3 {
		t.Fatalf("Done(%v, up %d), want half_close_timeout, 3", r.r, r.up)
	}
}
