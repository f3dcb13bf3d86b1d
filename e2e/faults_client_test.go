package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults of the client: it reads slowly, or vanishes without a FIN.

// patternPeriod is the period of patternByte: a buffer of this length
// holds every byte of a stream, so streams of any length are written and
// checked with copies and compares instead of byte by byte.
const patternPeriod = 1 << 24

var (
	patternOnce sync.Once
	patternBuf  []byte
)

// pattern returns patternPeriod bytes of the pattern of seed 0, twice
// over, so that any window of up to patternPeriod bytes is one slice.
func pattern() []byte {
	patternOnce.Do(func() {
		patternBuf = make([]byte, 2*patternPeriod)
		fillPattern(patternBuf, 0, 0)
	})
	return patternBuf
}

// patternAt returns the n bytes of the pattern at offset off.
func patternAt(off int64, n int) []byte {
	start := int(off % patternPeriod)
	return pattern()[start : start+n]
}

// sourceBackend accepts one connection, writes size bytes of the pattern
// to it and half-closes, counting what the kernel took.
type sourceBackend struct {
	addr    string
	written atomic.Int64
	done    chan error
}

func newSourceBackend(t *testing.T, size int64) *sourceBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sourceBackend{addr: ln.Addr().String(), done: make(chan error, 1)}
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			s.done <- err
			return
		}
		conns <- c
		defer c.Close()
		const chunk = 64 << 10
		for off := int64(0); off < size; off += chunk {
			n, err := c.Write(patternAt(off, int(min(chunk, size-off))))
			s.written.Add(int64(n))
			if err != nil {
				s.done <- err
				return
			}
		}
		s.done <- c.(*net.TCPConn).CloseWrite()
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case c := <-conns:
			c.Close()
		default:
		}
	})
	return s
}

// TestFaultSlowReader: fault 3. A client reads 1 KiB/s while its target
// writes 256 MiB: TCP flow control holds the target back, the proxy's
// memory does not grow with what the target has to send, and once the
// client reads fast every byte arrives, in order.
func TestFaultSlowReader(t *testing.T) {
	const total = 256 << 20
	slowFor := 6 * time.Second
	if longFaults {
		slowFor = 60 * time.Second
	}
	src := newSourceBackend(t, total)
	port := freePort(t)
	proc := startCaddy(t, proxyCfg{Apps: []appCfg{faultApp("slow", port, src.addr)}})
	pattern() // before measuring: this process's memory is not the proxy's, but its CPU is shared
	settledCounts(t, proc)
	base := mustRSS(t, proc.pid())

	conn, err := dialProxy(port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Slow phase: 1 KiB a second.
	var got int64
	buf := make([]byte, 1<<10)
	peak := base
	var writtenEarly int64
	start := time.Now()
	for i := 0; time.Since(start) < slowFor; i++ {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Fatalf("slow read at %d: %v", got, err)
		}
		if !bytes.Equal(buf, patternAt(got, len(buf))) {
			t.Fatalf("bytes %d..%d differ from what the target wrote", got, got+int64(len(buf)))
		}
		got += int64(len(buf))
		peak = max(peak, mustRSS(t, proc.pid()))
		if time.Since(start) < slowFor-2*time.Second {
			writtenEarly = src.written.Load()
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second)))
	}
	written := src.written.Load()
	growth := peak - base
	figure(t, "slow reader (1 KiB/s for %s) of a 256 MiB stream: proxy RSS %.1f MiB -> peak %.1f MiB (+%.2f MiB); target held back after writing %.2f MiB (%d bytes more in the last 2s)",
		slowFor, mib(base), mib(peak), mib(growth), mib(written), written-writtenEarly)
	if growth >= 4<<20 {
		t.Errorf("proxy RSS grew by %.2f MiB while the client read slowly, want < 4 MiB", mib(growth))
	}
	if written >= total/4 || written-writtenEarly > 1<<20 {
		t.Errorf("target not held back: it wrote %d bytes (%d in the last 2s) while the client read %d", written, written-writtenEarly, got)
	}

	// Fast phase: the rest, every byte checked.
	fastStart := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReaderSize(conn, 1<<20)
	big := make([]byte, 1<<20)
	for {
		n, err := r.Read(big)
		if int64(n) > total-got {
			t.Fatalf("%d bytes past the end of the stream", got+int64(n)-total)
		}
		if n > 0 && !bytes.Equal(big[:n], patternAt(got, n)) {
			t.Fatalf("bytes %d..%d differ from what the target wrote", got, got+int64(n))
		}
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("fast read at %d: %v", got, err)
		}
	}
	if err := <-src.done; err != nil {
		t.Errorf("target: %v", err)
	}
	figure(t, "slow reader, then fast: %d of %d bytes arrived intact, the rest in %s", got, total, time.Since(fastStart).Round(time.Millisecond))
	if got != total {
		t.Errorf("received %d bytes, want %d", got, total)
	}
	conn.Close()
	if !waitFor(5*time.Second, func() bool { return len(accessLog(t, proc, "slow")) == 1 }) {
		t.Fatal("no access log entry for the connection")
	}
	if e := accessLog(t, proc, "slow")[0]; e.BytesSent != total || e.Reason != "normal" {
		t.Errorf("access log: %d bytes sent, reason %s; want %d, normal", e.BytesSent, e.Reason, total)
	}
}

// pushBackend greets each connection, then (if push) writes to it without
// end, and records when the proxy closed its side.
type pushBackend struct {
	addr   string
	push   bool
	mu     sync.Mutex
	closed []time.Time
	ln     net.Listener
}

func newPushBackend(t *testing.T, push bool) *pushBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &pushBackend{addr: ln.Addr().String(), push: push, ln: ln}
	var wg sync.WaitGroup
	var conns connList
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.add(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.closeAll()
		wg.Wait()
	})
	return b
}

func (b *pushBackend) serve(c net.Conn) {
	defer c.Close()
	if _, err := c.Write([]byte("P\n")); err != nil {
		return
	}
	if b.push {
		go func() {
			for off := int64(0); ; off += 4 << 10 {
				if _, err := c.Write(patternAt(off, 4<<10)); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	_, _ = io.Copy(io.Discard, c) // until the proxy closes its side
	b.mu.Lock()
	b.closed = append(b.closed, time.Now())
	b.mu.Unlock()
}

func (b *pushBackend) closedAt() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.closed...)
}

// TestFaultPeerVanishes: fault 5. A client in a network namespace of its
// own loses its link once connected: no FIN, no reset, nothing. The
// proxy reclaims the connection (and closes the target's side) within the
// keepalive configured when the connection is quiet, and within the idle
// timeout when the target still sends (unacknowledged data stops
// keepalive probes); nothing leaks.
func TestFaultPeerVanishes(t *testing.T) {
	keepalive := &keepaliveCfg{Idle: "1s", Interval: "1s", Count: 2}
	const keepaliveBound = 3 * time.Second // idle + count * interval
	for _, tc := range []struct {
		name  string
		push  bool
		idle  time.Duration
		bound time.Duration
		want  string // access log reason
	}{
		{"quiet connection, keepalive", false, time.Hour, keepaliveBound, "client_error"},
		{"target sending, idle timeout", true, 3 * time.Second, 3 * time.Second, "idle_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link := newNetnsLink(t)
			be := newPushBackend(t, tc.push)
			port := freePort(t)
			a := faultApp("vanish", port, be.addr)
			a.Bind = []string{link.hostIP}
			a.lifecycleCfg = &lifecycleCfg{IdleTimeout: tc.idle.String(), Keepalive: keepalive}
			proc := startCaddy(t, proxyCfg{Apps: []appCfg{a}})
			baseG, baseF := settledCounts(t, proc)

			conn, err := link.dial(net.JoinHostPort(link.hostIP, fmt.Sprint(port)))
			if err != nil {
				t.Fatalf("dialing from the namespace: %v", err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if name, err := greeting(r); err != nil || name != "P" {
				t.Fatalf("greeting %q, %v", name, err)
			}
			var received atomic.Int64
			if tc.push {
				go func() { // reads until the test closes the connection
					_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
					buf := make([]byte, 64<<10)
					for {
						n, err := r.Read(buf)
						received.Add(int64(n))
						if err != nil {
							return
						}
					}
				}()
				if !waitFor(10*time.Second, func() bool { return received.Load() > 256<<10 }) {
					t.Fatal("the target's bytes do not reach the client")
				}
			}
			cutAt := time.Now()
			if err := link.cut(); err != nil {
				t.Fatal(err)
			}
			var reclaimed time.Duration
			if !waitFor(tc.bound+10*time.Second, func() bool {
				if c := be.closedAt(); len(c) > 0 {
					reclaimed = c[0].Sub(cutAt)
					return true
				}
				return false
			}) {
				t.Fatalf("the target's side still open %s after the client vanished", tc.bound+10*time.Second)
			}
			var entries []accessEntry
			waitFor(5*time.Second, func() bool { entries = accessLog(t, proc, "vanish"); return len(entries) > 0 })
			g, f, _ := backToBaseline(t, proc, baseG, baseF, 3, 10*time.Second)
			figure(t, "client vanished (%s; keepalive 1s/1s/2, idle_timeout %s): reclaimed %s after the cut, access log %v; goroutines %d -> %d, fds %d -> %d",
				tc.name, tc.idle, reclaimed.Round(time.Millisecond), reasons(entries), baseG, g, baseF, f)
			if reclaimed > tc.bound+time.Second {
				t.Errorf("reclaimed %s after the cut, want within %s and a second", reclaimed, tc.bound)
			}
			if len(entries) != 1 || entries[0].Reason != tc.want {
				t.Errorf("access log %+v, want one entry with reason %s", entries, tc.want)
			}
		})
	}
}
