//go:build linux

package evloop

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestSlowReaderIsNotIdle: a client that reads steadily but slowly while
// its target has megabytes to send moves bytes all the time, so the idle
// timeout must not end it, although the loop writes to the client's
// socket only when the kernel wakes it, once a third of a grown send
// buffer is free. A client that stops reading altogether is idle, and is
// ended. (The same test as internal/relay's, on the loop.)
func TestSlowReaderIsNotIdle(t *testing.T) {
	const idle = time.Second
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{Idle: idle}, func() *session { return newSession(ts.target()) })
	// A small receive buffer from the start: the client's window opens a
	// few KiB at a time, as on a slow link.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	nc, err := d.Dial("tcp", f.addr())
	if err != nil {
		t.Fatal(err)
	}
	client := nc.(*net.TCPConn)
	t.Cleanup(func() { client.Close() })
	var s *session
	select {
	case s = <-f.sessions:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not handed to a loop")
	}
	tc := ts.accept(t)
	go func() {
		chunk := make([]byte, 256<<10)
		for {
			if _, err := tc.Write(chunk); err != nil {
				return
			}
		}
	}()

	buf := make([]byte, 4<<10)
	got := 0
	start := time.Now()
	for time.Since(start) < 5*idle {
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(client, buf)
		got += n
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		select {
		case r := <-s.done:
			t.Fatalf("ended (%v) after %v while the client read steadily (%d bytes so far)",
				r.r, time.Since(start).Round(time.Millisecond), got)
		default:
		}
		time.Sleep(50 * time.Millisecond) // the client's pace: 80 KiB/s
	}
	t.Logf("read %d bytes in %v at the client's pace; the connection is open", got, time.Since(start).Round(time.Millisecond))

	// Now the client reads nothing: its window closes, nothing moves, and
	// the connection is idle: ended within the timeout and two looks.
	stopped := time.Now()
	r := s.wait(t, 10*idle)
	if r.r != IdleTimeout {
		t.Fatalf("Done(%v) for a client that stopped reading, want idle_timeout", r.r)
	}
	if took := time.Since(stopped); took > 3*idle {
		t.Errorf("a client that stopped reading was ended after %v, want about %v", took.Round(time.Millisecond), idle)
	} else {
		t.Logf("ended %v after the client stopped reading (idle_timeout %v)", took.Round(time.Millisecond), idle)
	}
}

// TestQuietConnectionWithNothingInFlightClosesOnTime: the look at the
// kernel's counts costs a connection that is really quiet (nothing
// unsent or unacknowledged) no delay.
func TestQuietConnectionWithNothingInFlightClosesOnTime(t *testing.T) {
	const idle = 300 * time.Millisecond
	ls := testLoops(t, 1)
	f := newFixture(t, ls, Timeouts{Idle: idle}, func() *session { return newSession(echoTarget(t)) })
	c, s := f.dial()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := s.wait(t, 5*time.Second); r.r != IdleTimeout {
		t.Fatalf("Done(%v), want idle_timeout", r.r)
	}
	if took := time.Since(start); took > idle+idle/2 {
		t.Errorf("ended %v after the last byte, want about %v (no second look)", took.Round(time.Millisecond), idle)
	}
}
