//go:build linux

package evloop

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testLoops starts a private pool of n loops, stopped at the end of the
// test, which then waits for its loops to exit.
func testLoops(t testing.TB, n int) *Loops {
	t.Helper()
	ls, err := start(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ls.stop()
		waitFor(t, 5*time.Second, "the loops to exit", func() bool { return exited(ls) })
	})
	return ls
}

func exited(ls *Loops) bool {
	for _, l := range ls.loops {
		if l.state.Load()&closedBit == 0 {
			return false
		}
	}
	return true
}

// listen sets up a Listener the way the caller is to.
func listen(t testing.TB) *Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		if err := SetListenerOptions(rc); err != nil {
			return err
		}
		return SetKeepAlive(rc, net.KeepAliveConfig{Enable: true})
	}}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fixture accepts connections with Accept and hands each to a pool, with
// the session plan makes.
type fixture struct {
	t        testing.TB
	ln       *Listener
	sessions chan *session
}

func newFixture(t testing.TB, ls *Loops, to Timeouts, plan func() *session) *fixture {
	t.Helper()
	f := &fixture{t: t, ln: listen(t), sessions: make(chan *session, 1024)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := f.ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("accept: %v", err)
				}
				return
			}
			c := nc.(*Conn)
			s := plan()
			h, err := ls.Proxy(c, s, to)
			if err != nil {
				t.Errorf("proxy: %v", err)
				c.Close()
				continue
			}
			s.h = h
			f.sessions <- s
		}
	}()
	t.Cleanup(func() {
		f.ln.Close()
		wg.Wait()
	})
	return f
}

func (f *fixture) addr() string { return f.ln.Addr().String() }

// dial connects a client and returns it with its session.
func (f *fixture) dial() (*net.TCPConn, *session) {
	f.t.Helper()
	c, err := net.DialTimeout("tcp", f.addr(), 5*time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	select {
	case s := <-f.sessions:
		return c.(*net.TCPConn), s
	case <-time.After(5 * time.Second):
		f.t.Fatal("the connection was not handed to a loop")
	}
	return nil, nil
}

// session is a Session that records what the loop reports.
type session struct {
	targets []Target
	h       Handle

	mu        sync.Mutex
	next      int
	failed    []error
	connected []Target
	done      chan result
	dones     atomic.Int32
}

type result struct {
	r        Reason
	up, down int64
}

func newSession(targets ...Target) *session {
	return &session{targets: targets, done: make(chan result, 4)}
}

func (s *session) Next() (Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == len(s.targets) {
		return Target{}, false
	}
	s.next++
	return s.targets[s.next-1], true
}

func (s *session) DialFailed(_ Target, err error) {
	s.mu.Lock()
	s.failed = append(s.failed, err)
	s.mu.Unlock()
}

func (s *session) Connected(t Target, _ time.Duration) {
	s.mu.Lock()
	s.connected = append(s.connected, t)
	s.mu.Unlock()
}

func (s *session) Done(r Reason, up, down int64) {
	s.dones.Add(1)
	s.done <- result{r, up, down}
}

// wait returns the session's end, failing the test if it does not come.
func (s *session) wait(t testing.TB, within time.Duration) result {
	t.Helper()
	select {
	case r := <-s.done:
		return r
	case <-time.After(within):
		t.Fatalf("the connection did not end within %v", within)
	}
	return result{}
}

// notDone fails the test if the session ends within d.
func (s *session) notDone(t testing.TB, d time.Duration, why string) {
	t.Helper()
	select {
	case r := <-s.done:
		t.Fatalf("the connection ended (%v) although %s", r.r, why)
	case <-time.After(d):
	}
}

func (s *session) failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.failed...)
}

// targetServer is a test target: each connection it accepts is handed to
// the test.
type targetServer struct {
	ln    *net.TCPListener
	conns chan *net.TCPConn
}

func newTarget(t testing.TB) *targetServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &targetServer{ln: ln.(*net.TCPListener), conns: make(chan *net.TCPConn, 1024)}
	go func() {
		defer close(ts.conns)
		for {
			c, err := ts.ln.AcceptTCP()
			if err != nil {
				return
			}
			ts.conns <- c
		}
	}()
	t.Cleanup(func() {
		ts.ln.Close()
		for c := range ts.conns { // those the test did not take
			c.Close()
		}
	})
	return ts
}

func (ts *targetServer) target() Target {
	return Target{Addr: ts.ln.Addr().(*net.TCPAddr).AddrPort(), DialTimeout: 5 * time.Second}
}

// accept returns the next connection the target accepted.
func (ts *targetServer) accept(t testing.TB) *net.TCPConn {
	t.Helper()
	select {
	case c, ok := <-ts.conns:
		if !ok {
			t.Fatal("the target is closed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the target accepted no connection")
	}
	return nil
}

// echoTarget answers every byte with the same byte and passes the
// half-close back.
func echoTarget(t testing.TB) Target {
	t.Helper()
	ts := newTarget(t)
	go func() {
		for c := range ts.conns {
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ts.target()
}

// closedPort returns an address on which nothing listens.
func closedPort(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// settle waits until goroutines and descriptors are back to a baseline.
func settle(t testing.TB, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines and %d descriptors, want at most %d and %d\n%s",
				g, f, goroutines, fds, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
