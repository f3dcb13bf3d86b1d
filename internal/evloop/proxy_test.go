//go:build linux

package evloop

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// stream writes n pseudo-random bytes (seeded) to w and returns their hash.
func stream(w io.Writer, n int64, seed uint64) ([32]byte, error) {
	h := sha256.New()
	r := io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n)
	_, err := io.Copy(io.MultiWriter(w, h), r)
	return [32]byte(h.Sum(nil)), err
}

// drain reads r to EOF and returns the hash and count of what it read.
func drain(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return [32]byte(h.Sum(nil)), n, err
}

// byteCounter is a Counter, as a Prometheus counter would be.
type byteCounter struct{ n atomic.Int64 }

func (bc *byteCounter) Add(v float64) { bc.n.Add(int64(v)) }

func TestEchoThroughTheLoop(t *testing.T) {
	ls := testLoops(t, 2)
	echo := echoTarget(t)
	var upBytes, downBytes byteCounter
	echo.Up, echo.Down = &upBytes, &downBytes
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(echo) })
	c, s := f.dial()
	for i := range 100 {
		msg := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i*37))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip %d: got %d bytes (%v), want %d", i, len(got), err, len(msg))
		}
	}
	c.CloseWrite()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	r := s.wait(t, 5*time.Second)
	if r.r != Normal || r.up != r.down || r.up == 0 {
		t.Fatalf("Done(%v, up %d, down %d), want normal with equal non-zero counts", r.r, r.up, r.down)
	}
	if upBytes.n.Load() != r.up || downBytes.n.Load() != r.down {
		t.Fatalf("the target's counters say %d up, %d down; Done says %d, %d", upBytes.n.Load(), downBytes.n.Load(), r.up, r.down)
	}
}

func TestIPv6Target(t *testing.T) {
	l6, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l6.Close()
	ls := testLoops(t, 1)
	tgt := Target{Addr: l6.Addr().(*net.TCPAddr).AddrPort(), DialTimeout: 5 * time.Second}
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(tgt) })
	c, _ := f.dial()
	c.Write([]byte("over v6"))
	c.CloseWrite()
	tc, err := l6.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if got, _ := io.ReadAll(tc); string(got) != "over v6" {
		t.Fatalf("target read %q", got)
	}
}

func TestBulkBothWaysArrivesExactly(t *testing.T) {
	ls := testLoops(t, 2)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	const size = 48 << 20
	type sums struct {
		sent, got [32]byte
		n         int64
		err       error
	}
	// Each end sends and receives at once: both directions are busy.
	run := func(conn *net.TCPConn, seed uint64) chan sums {
		ch := make(chan sums, 1)
		go func() {
			var out sums
			done := make(chan error, 1)
			go func() {
				var err error
				out.sent, err = stream(conn, size, seed)
				conn.CloseWrite()
				done <- err
			}()
			out.got, out.n, out.err = drain(conn)
			if err := <-done; err != nil && out.err == nil {
				out.err = err
			}
			ch <- out
		}()
		return ch
	}
	spliced := SplicedBytes.Load()
	cr, tr := run(c, 1), run(tc, 2)
	var cs, tsum sums
	for range 2 {
		select {
		case cs = <-cr:
		case tsum = <-tr:
		case <-time.After(60 * time.Second):
			t.Fatal("bulk transfer did not finish")
		}
	}
	if cs.err != nil || tsum.err != nil {
		t.Fatalf("client: %v, target: %v", cs.err, tsum.err)
	}
	if tsum.n != size || tsum.got != cs.sent {
		t.Errorf("target received %d bytes, hash match %v; want %d, matching", tsum.n, tsum.got == cs.sent, size)
	}
	if cs.n != size || cs.got != tsum.sent {
		t.Errorf("client received %d bytes, hash match %v; want %d, matching", cs.n, cs.got == tsum.sent, size)
	}
	r := s.wait(t, 5*time.Second)
	if r.r != Normal || r.up != size || r.down != size {
		t.Errorf("Done(%v, %d, %d), want normal, %d both ways", r.r, r.up, r.down, size)
	}
	if n := parked.Load(); n != 0 {
		t.Errorf("%d parked buffers not returned", n)
	}
	// Bulk moves by splice: all but the bursts read through the buffer.
	if d := SplicedBytes.Load() - spliced; d < size {
		t.Errorf("%d of %d bytes spliced, want most", d, 2*size)
	}
}

func TestClientHalfCloseLetsTheReplyFlow(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	c.Write([]byte("request"))
	c.CloseWrite()
	got, err := io.ReadAll(tc) // the target sees the request, then EOF
	if err != nil || string(got) != "request" {
		t.Fatalf("target read %q, %v", got, err)
	}
	if _, err := tc.Write([]byte("reply after EOF")); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "reply after EOF" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if r := s.wait(t, 5*time.Second); r.r != Normal || r.up != 7 || r.down != 15 {
		t.Fatalf("Done(%v, %d, %d), want normal, 7, 15", r.r, r.up, r.down)
	}
}

func TestTargetHalfCloseLetsTheClientSend(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	tc.Write([]byte("greeting"))
	tc.CloseWrite()
	got, err := io.ReadAll(c) // the client sees the greeting, then EOF
	if err != nil || string(got) != "greeting" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if _, err := c.Write([]byte("sent after EOF")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	got, err = io.ReadAll(tc)
	if err != nil || string(got) != "sent after EOF" {
		t.Fatalf("target read %q, %v", got, err)
	}
	if r := s.wait(t, 5*time.Second); r.r != Normal || r.up != 14 || r.down != 8 {
		t.Fatalf("Done(%v, %d, %d), want normal, 14, 8", r.r, r.up, r.down)
	}
}

// send writes data with flags (MSG_OOB: the last byte is urgent).
func send(t *testing.T, c *net.TCPConn, data string, flags int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), []byte(data), flags, nil)
		return true
	}); err != nil || serr != nil {
		t.Fatalf("send %q: %v %v", data, err, serr)
	}
}

func TestUrgentDataArrivesInOrder(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)
	// Both ways: the client's socket inherits SO_OOBINLINE from the
	// listener, the loop sets it on the socket it dials.
	for _, dir := range []struct {
		name     string
		from, to *net.TCPConn
	}{{"up", c, tc}, {"down", tc, c}} {
		send(t, dir.from, "before-", 0)
		send(t, dir.from, "!", unix.MSG_OOB)
		send(t, dir.from, "-after", 0)
		if dir.name == "down" {
			send(t, dir.from, "#", unix.MSG_OOB) // urgent, then the FIN at once
		}
		dir.from.CloseWrite()
		got, err := io.ReadAll(dir.to)
		want := "before-!-after"
		if dir.name == "down" {
			want += "#"
		}
		if err != nil || string(got) != want {
			t.Fatalf("%s: received %q (%v), want %q", dir.name, got, err, want)
		}
	}
	if r := s.wait(t, 5*time.Second); r.r != Normal {
		t.Fatalf("Done(%v), want normal", r.r)
	}
}

func TestRefusedTargetFailsOverToTheNext(t *testing.T) {
	ls := testLoops(t, 1)
	echo := echoTarget(t)
	dead := Target{Addr: closedPort(t), DialTimeout: time.Second}
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(dead, echo) })
	c, s := f.dial()
	c.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v", got, err)
	}
	errs := s.failures()
	if len(errs) != 1 || !errors.Is(errs[0], syscall.ECONNREFUSED) {
		t.Fatalf("DialFailed reported %v, want one ECONNREFUSED", errs)
	}
	s.mu.Lock()
	connected := s.connected
	s.mu.Unlock()
	if len(connected) != 1 || connected[0].Addr != echo.Addr {
		t.Fatalf("Connected reported %v, want %v", connected, echo.Addr)
	}
}

// blackHole returns the address of a listener whose accept queue is full
// and never drained: a SYN to it is dropped, as by a firewall.
func blackHole(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := addrPort(sa)
	// Fill the queue: connections complete until it is full, then hang.
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatal("the accept queue never filled")
		}
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func TestBlackHoledTargetTimesOutAndFailsOver(t *testing.T) {
	ls := testLoops(t, 1)
	echo := echoTarget(t)
	hole := Target{Addr: blackHole(t), DialTimeout: 100 * time.Millisecond}
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(hole, echo) })
	start := time.Now()
	c, s := f.dial()
	c.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v", got, err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("the reply took %v, want the dial timeout (100ms) and a little more", d)
	}
	errs := s.failures()
	if len(errs) != 1 || !errors.Is(errs[0], os.ErrDeadlineExceeded) {
		t.Fatalf("DialFailed reported %v, want one timeout", errs)
	}
}

func TestNoTargetEndsTheConnection(t *testing.T) {
	ls := testLoops(t, 1)
	for _, tc := range []struct {
		name    string
		targets []Target
		want    Reason
	}{
		{"none offered", nil, NoHealthyTarget},
		{"all refused", []Target{{Addr: closedPort(t)}, {Addr: closedPort(t)}}, DialFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(tc.targets...) })
			c, s := f.dial()
			if r := s.wait(t, 5*time.Second); r.r != tc.want {
				t.Fatalf("Done(%v), want %v", r.r, tc.want)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("client read %d, %v; want the connection closed", n, err)
			}
			if got := len(s.failures()); got != len(tc.targets) {
				t.Fatalf("%d dials reported failed, want %d", got, len(tc.targets))
			}
		})
	}
}

func TestPreambleArrivesFirst(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	header := []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n")
	tgt := ts.target()
	tgt.Preamble = header
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(tgt) })

	// The client speaks first: its bytes follow the header.
	c, s := f.dial()
	c.Write([]byte("hello"))
	c.CloseWrite()
	tc := ts.accept(t)
	got, _ := io.ReadAll(tc)
	if want := string(header) + "hello"; string(got) != want {
		t.Fatalf("target read %q, want %q", got, want)
	}
	tc.Close()
	if r := s.wait(t, 5*time.Second); r.up != 5 {
		t.Fatalf("Done counted %d bytes up, want 5 (the header is not the client's)", r.up)
	}

	// The target speaks first: the header comes without any client byte.
	f.dial()
	tc = ts.accept(t)
	got = make([]byte, len(header))
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(tc, got); err != nil || !bytes.Equal(got, header) {
		t.Fatalf("target read %q, %v; want the header", got, err)
	}
}

func TestUrgentByteAfterBulkArrivesInOrder(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	// Bulk moves by splice, which stops at an urgent mark and, with the
	// FIN right behind, reports 0 as if at the end. Whether the loop meets
	// the mark while splicing depends on timing: ten rounds.
	bulk := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	for range 10 {
		c, s := f.dial()
		tc := ts.accept(t)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(tc)
			got <- b
		}()
		if _, err := c.Write(bulk); err != nil {
			t.Fatal(err)
		}
		send(t, c, "!", unix.MSG_OOB)
		c.CloseWrite()
		select {
		case b := <-got:
			if want := append(bulk, '!'); !bytes.Equal(b, want) {
				t.Fatalf("target received %d bytes ending %q, want %d ending %q", len(b), b[max(0, len(b)-8):], len(want), want[len(want)-8:])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the target did not receive everything")
		}
		tc.Close()
		if r := s.wait(t, 5*time.Second); r.r != Normal || r.up != int64(len(bulk)+1) {
			t.Fatalf("Done(%v, up %d), want normal, %d", r.r, r.up, len(bulk)+1)
		}
	}
}
