package relay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// counter is a Counter for tests.
type counter struct{ n atomic.Int64 }

func (c *counter) Add(v float64) { c.n.Add(int64(v)) }

// pair returns both ends of a loopback TCP connection.
func pair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-done
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// proxied sets up client ↔ relay ↔ target over loopback and runs the
// relay. It returns the client's and the target's ends, the relay, and a
// channel that yields the reason Run returned.
func proxied(t testing.TB, to Timeouts) (client, target *net.TCPConn, c *Conn, up, down *counter, done chan Reason) {
	client, proxyClient := pair(t)
	proxyTarget, target := pair(t)
	up, down = new(counter), new(counter)
	c = New(proxyClient, proxyTarget, to, time.Now(), up, down)
	done = make(chan Reason, 1)
	go func() { done <- c.Run() }()
	return client, target, c, up, down, done
}

func waitReason(t *testing.T, done chan Reason, within time.Duration) Reason {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(within):
		t.Fatalf("connection still running after %s", within)
		return 0
	}
}

func TestBytesArriveIntactBothWaysAndAreCounted(t *testing.T) {
	client, target, c, up, down, done := proxied(t, Timeouts{})
	const size = 4 << 20 // large enough to splice
	data := make([]byte, size)
	_, _ = rand.Read(data)
	var wg sync.WaitGroup
	wg.Add(2)
	var gotUp, gotDown []byte
	go func() { defer wg.Done(); gotUp, _ = io.ReadAll(target) }()
	go func() { defer wg.Done(); gotDown, _ = io.ReadAll(client) }()
	go func() { _, _ = client.Write(data); _ = client.CloseWrite() }()
	go func() { _, _ = target.Write(data[:size/2]); _ = target.CloseWrite() }()
	wg.Wait()
	if r := waitReason(t, done, 10*time.Second); r != Normal {
		t.Errorf("reason %v, want normal", r)
	}
	if !bytes.Equal(gotUp, data) || !bytes.Equal(gotDown, data[:size/2]) {
		t.Fatalf("bytes differ: up %d of %d, down %d of %d", len(gotUp), size, len(gotDown), size/2)
	}
	if u, d := c.Bytes(); u != size || d != size/2 {
		t.Errorf("Bytes() = %d, %d; want %d, %d", u, d, size, size/2)
	}
	if up.n.Load() != size || down.n.Load() != size/2 {
		t.Errorf("counters %d, %d; want %d, %d", up.n.Load(), down.n.Load(), size, size/2)
	}
}

func TestFailuresAreBlamedOnTheSideThatFailed(t *testing.T) {
	for _, tc := range []struct {
		name string
		side func(client, target *net.TCPConn) *net.TCPConn
		want Reason
	}{
		{"client reset", func(c, _ *net.TCPConn) *net.TCPConn { return c }, ClientError},
		{"target reset", func(_, t *net.TCPConn) *net.TCPConn { return t }, TargetError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, target, _, _, _, done := proxied(t, Timeouts{})
			s := tc.side(client, target)
			_ = s.SetLinger(0)
			s.Close()
			if r := waitReason(t, done, 5*time.Second); r != tc.want {
				t.Errorf("reason %v, want %v", r, tc.want)
			}
		})
	}
}

func TestTimeoutsEndConnectionsWithTheirReason(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		_, _, _, _, _, done := proxied(t, Timeouts{Idle: 100 * time.Millisecond})
		if r := waitReason(t, done, 5*time.Second); r != IdleTimeout {
			t.Errorf("reason %v, want idle_timeout", r)
		}
	})
	t.Run("traffic keeps idle alive", func(t *testing.T) {
		client, target, _, _, _, done := proxied(t, Timeouts{Idle: time.Second})
		go func() { _, _ = io.Copy(io.Discard, target) }()
		for range 150 { // 3 s, 3x the timeout, a byte every 20 ms
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case r := <-done:
			t.Fatalf("ended (%v) while bytes flowed", r)
		default:
		}
	})
	t.Run("half-close", func(t *testing.T) {
		client, target, _, _, _, done := proxied(t, Timeouts{Idle: time.Hour, HalfClose: 100 * time.Millisecond})
		_ = client.CloseWrite()
		go func() { _, _ = io.Copy(io.Discard, target) }()
		if r := waitReason(t, done, 5*time.Second); r != HalfCloseTimeout {
			t.Errorf("reason %v, want half_close_timeout", r)
		}
	})
	t.Run("max duration", func(t *testing.T) {
		client, target, _, _, _, done := proxied(t, Timeouts{MaxDuration: 200 * time.Millisecond})
		go func() { _, _ = io.Copy(io.Discard, target) }()
		go func() {
			for {
				if _, err := client.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		if r := waitReason(t, done, 5*time.Second); r != MaxDuration {
			t.Errorf("reason %v, want max_duration", r)
		}
	})
}

func TestCloseGivesTheFirstReasonOnly(t *testing.T) {
	_, _, c, _, _, done := proxied(t, Timeouts{})
	c.Close(Shutdown)
	c.Close(Admin)
	if r := waitReason(t, done, 5*time.Second); r != Shutdown {
		t.Errorf("reason %v, want shutdown", r)
	}
}

func TestGenericPathForWrappedConnections(t *testing.T) {
	client, proxyClient := pair(t)
	proxyTarget, target := pair(t)
	up, down := new(counter), new(counter)
	// Hiding the *net.TCPConn type forces the generic copy.
	type wrapped struct{ net.Conn }
	c := New(wrapped{proxyClient}, proxyTarget, Timeouts{}, time.Now(), up, down)
	done := make(chan Reason, 1)
	go func() { done <- c.Run() }()
	go func() { _, _ = io.Copy(target, target) }()
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	_ = client.SetLinger(0)
	client.Close()
	if r := waitReason(t, done, 5*time.Second); r != ClientError {
		t.Errorf("reason %v, want client_error", r)
	}
	if u, d := c.Bytes(); u != 5 || d != 5 {
		t.Errorf("Bytes() = %d, %d; want 5, 5", u, d)
	}
}

func TestExpiredFollowsTheRules(t *testing.T) {
	ms := time.Millisecond
	to := Timeouts{Idle: 100 * ms, HalfClose: 40 * ms, MaxDuration: time.Second}
	a := &activity{}
	if r, next := to.expired(10*ms, a, 0, 0); r != 0 || next > 100*ms/checksPerTimeout {
		t.Errorf("fresh connection: %v, next %s", r, next)
	}
	a.observe(50*ms, 1, 0)
	if r, _ := to.expired(140*ms, a, 0, 0); r != 0 {
		t.Errorf("90ms after a byte, idle 100ms: %v", r)
	}
	if r, _ := to.expired(151*ms, a, 0, 0); r != IdleTimeout {
		t.Errorf("101ms after a byte: %v, want idle_timeout", r)
	}
	// Up ended at 60ms; down last moved at 50ms.
	if r, _ := to.expired(95*ms, a, 60*ms, 0); r != 0 {
		t.Errorf("35ms after the half-close: %v", r)
	}
	if r, _ := to.expired(101*ms, a, 60*ms, 0); r != HalfCloseTimeout {
		t.Errorf("41ms after the half-close: %v, want half_close_timeout", r)
	}
	if r, _ := to.expired(time.Second, a, 0, 0); r != MaxDuration {
		t.Errorf("at max duration: %v", r)
	}
	if r, _ := (Timeouts{}).expired(time.Hour, &activity{}, 0, 0); r != 0 {
		t.Errorf("no timeouts: %v", r)
	}
}

func TestReasonNames(t *testing.T) {
	want := []string{"normal", "client_error", "target_error", "idle_timeout", "half_close_timeout",
		"max_duration", "target_down", "admin", "shutdown"}
	for i, r := range Reasons {
		if r.String() != want[i] {
			t.Errorf("reason %d is %q, want %q", r, r, want[i])
		}
	}
	if len(Reasons) != int(MaxReason) {
		t.Errorf("%d reasons, MaxReason %d", len(Reasons), MaxReason)
	}
	if !errors.Is(readError{io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF) {
		t.Error("readError does not unwrap")
	}
}

// benchmarkEcho measures one 64-byte request/response through a relay with
// the given timeouts: the per-byte cost of the timers.
func benchmarkEcho(b *testing.B, to Timeouts) {
	client, target, _, _, _, _ := proxied(b, to)
	go func() { _, _ = io.Copy(target, target) }()
	msg, buf := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEchoTimersOff(b *testing.B) { benchmarkEcho(b, Timeouts{}) }
func BenchmarkEchoTimersOn(b *testing.B) {
	benchmarkEcho(b, Timeouts{Idle: time.Hour, HalfClose: time.Minute, MaxDuration: time.Hour})
}

// benchmarkConnection measures setting up, running and ending one
// relayed connection (the sockets are made outside the timer): the
// per-connection cost of the timers.
func benchmarkConnection(b *testing.B, to Timeouts) {
	up, down := new(counter), new(counter)
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		client, proxyClient := pair(b)
		proxyTarget, target := pair(b)
		b.StartTimer()
		c := New(proxyClient, proxyTarget, to, time.Now(), up, down)
		_ = client.CloseWrite()
		_ = target.CloseWrite()
		c.Run()
		b.StopTimer()
		// Now, not at cleanup, and with a reset, not TIME_WAIT: a long
		// run would otherwise run out of descriptors or ports.
		for _, s := range []*net.TCPConn{client, target} {
			_ = s.SetLinger(0)
			_ = s.Close()
		}
		b.StartTimer()
	}
}

func BenchmarkConnectionTimersOff(b *testing.B) { benchmarkConnection(b, Timeouts{}) }
func BenchmarkConnectionTimersOn(b *testing.B) {
	benchmarkConnection(b, Timeouts{Idle: time.Hour, HalfClose: time.Minute, MaxDuration: time.Hour})
}

// TestSlowReaderIsNotIdle: a client that reads steadily but slowly while
// its target has megabytes to send moves bytes all the time, so the idle
// timeout must not close it. The copy waits on the client's socket with
// up to a pipe's worth (1 MiB) to write, and the kernel wakes it only
// once a third of a full send buffer is free: the bytes that reach the
// client meanwhile must count as traffic.
func TestSlowReaderIsNotIdle(t *testing.T) {
	const idle = time.Second
	// A small receive buffer from the start: the client's window opens a
	// few KiB at a time, as on a slow link.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := c.(*net.TCPConn)
	proxyClient := (<-accepted).(*net.TCPConn)
	t.Cleanup(func() { client.Close(); proxyClient.Close() })
	proxyTarget, target := pair(t)
	done := make(chan Reason, 1)
	go func() {
		done <- New(proxyClient, proxyTarget, Timeouts{Idle: idle}, time.Now(), new(counter), new(counter)).Run()
	}()
	go func() {
		chunk := make([]byte, 256<<10)
		for {
			if _, err := target.Write(chunk); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 4<<10)
	var got int
	start := time.Now()
	for time.Since(start) < 5*idle {
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(client, buf)
		got += n
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		select {
		case r := <-done:
			t.Fatalf("closed (%v) after %s while the client read steadily (%d bytes so far)", r, time.Since(start).Round(time.Millisecond), got)
		default:
		}
		time.Sleep(50 * time.Millisecond) // the client's pace: 80 KiB/s
	}
	t.Logf("read %d bytes in %s at the client's pace; the connection is open", got, time.Since(start).Round(time.Millisecond))
}

// TestQuietConnectionClosesOnTime: asking the kernel whether bytes left
// the socket buffers (TestSlowReaderIsNotIdle) delays the close of a
// connection that is really quiet by one look at most.
func TestQuietConnectionClosesOnTime(t *testing.T) {
	const idle = 400 * time.Millisecond
	start := time.Now()
	_, _, _, _, _, done := proxied(t, Timeouts{Idle: idle})
	if r := waitReason(t, done, 5*time.Second); r != IdleTimeout {
		t.Fatalf("reason %v, want idle_timeout", r)
	}
	// T + 2T/checksPerTimeout, and a generous margin for a loaded machine.
	if took := time.Since(start); took < idle || took > 2*idle {
		t.Errorf("closed after %s, want between %s and %s", took, idle, 2*idle)
	} else {
		t.Logf("closed after %s (idle_timeout %s)", took.Round(time.Millisecond), idle)
	}
}
