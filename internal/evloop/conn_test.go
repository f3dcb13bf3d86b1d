//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// acceptOne dials ln and returns both ends.
func acceptOne(t *testing.T, ln *Listener) (*Conn, *net.TCPConn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*Conn)
	t.Cleanup(func() { c.Close() })
	return c, client.(*net.TCPConn)
}

func TestAcceptedSocketInheritsTheListenerOptions(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	c, _ := acceptOne(t, ln)
	for _, o := range []struct {
		name             string
		level, opt, want int
	}{
		{"SO_OOBINLINE", unix.SOL_SOCKET, unix.SO_OOBINLINE, 1},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
	} {
		if v, err := unix.GetsockoptInt(int(c.fd), o.level, o.opt); err != nil || v != o.want {
			t.Errorf("%s = %d (%v), want %d", o.name, v, err, o.want)
		}
	}
}

func TestConnAddresses(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	c, client := acceptOne(t, ln)
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := c.RemoteAddrPort().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddrPort %s, want %s", got, want)
	}
	if got, want := c.LocalAddr().String(), ln.Addr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	if got, want := c.LocalAddrPort().String(), ln.Addr().String(); got != want {
		t.Errorf("LocalAddrPort %s, want %s", got, want)
	}
	if d := time.Since(c.AcceptedAt()); d < 0 || d > 5*time.Second {
		t.Errorf("AcceptedAt is %v ago, want just now", d)
	}
}

// TestAssumedLocalAddrNeedsNoSystemCall: a socket bound to one address
// gives its accepted connections that address without a getsockname,
// even once a loop owns them (when the socket can no longer be asked).
func TestAssumedLocalAddrNeedsNoSystemCall(t *testing.T) {
	ls := testLoops(t, 1)
	ln := listen(t)
	defer ln.Close()
	ln.AssumeLocalAddr()
	c, client := acceptOne(t, ln)
	if _, err := ls.Proxy(c, newSession(), Timeouts{}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.LocalAddrPort().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddrPort %s, want %s", got, want)
	}
	if got, want := c.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
}

func TestConnReadWriteConvertsIt(t *testing.T) {
	ls := testLoops(t, 1)
	ln := listen(t)
	defer ln.Close()
	c, client := acceptOne(t, ln)
	laddr := c.LocalAddr().String()

	// A deadline set before the conversion applies after it.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("Read with nothing sent: %v, want the recorded deadline to expire", err)
	}
	c.SetReadDeadline(time.Time{})
	client.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("Read %q, %v", got, err)
	}
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "pong" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if c.LocalAddr().String() != laddr {
		t.Errorf("LocalAddr changed with the conversion")
	}
	tc, err := c.TCPConn()
	if err != nil || tc == nil {
		t.Fatalf("TCPConn: %v", err)
	}
	if _, err := ls.Proxy(c, newSession(), Timeouts{}); !errors.Is(err, ErrConverted) {
		t.Fatalf("Proxy of a converted conn: %v, want ErrConverted", err)
	}
	// A half-close, as a copy of the caller's passes one on.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Read(got); err != io.EOF {
		t.Fatalf("client read after CloseWrite: %v, want EOF", err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after CloseWrite succeeded")
	}
	c.Close()
}

func TestConnCloseIsANoOpOnceProxied(t *testing.T) {
	ls := testLoops(t, 1)
	echo := echoTarget(t)
	ln := listen(t)
	defer ln.Close()
	c, client := acceptOne(t, ln)
	s := newSession(echo)
	if _, err := ls.Proxy(c, s, Timeouts{}); err != nil {
		t.Fatal(err)
	}
	// What a layer4 server does once the handler returns.
	if err := c.Close(); err != nil {
		t.Fatalf("Close of a proxied conn: %v", err)
	}
	c.SetDeadline(time.Now())
	client.Write([]byte("still here"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "still here" {
		t.Fatalf("read %q, %v: the proxied connection was cut", got, err)
	}
	if _, err := ls.Proxy(c, s, Timeouts{}); err == nil {
		t.Fatal("a conn was proxied twice")
	}
}

func TestAcceptReportsEMFILE(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// No descriptor left: lower the limit and fill every free number.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	tight := old
	tight.Cur = uint64(openFDs(t) + 16)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &tight); err != nil {
		t.Fatal(err)
	}
	var dups []int
	release := func() {
		for _, fd := range dups {
			unix.Close(fd)
		}
		dups = nil
		unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	}
	defer release()
	for {
		fd, err := unix.Dup(0)
		if err != nil {
			break
		}
		dups = append(dups, fd)
	}
	_, err = ln.Accept()
	release()
	if !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Accept with no descriptor left: %v, want EMFILE", err)
	}
	// Once descriptors are free again, the queued connection is there.
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE: %v", err)
	}
	nc.Close()
}

func TestAcceptAfterCloseSaysClosed(t *testing.T) {
	ln := listen(t)
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	ln.Close() // parked in Accept or not yet there: the same answer

	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// socketWithLocalPort finds this process's descriptor of the socket bound
// to port on 127.0.0.1.
func socketWithLocalPort(t *testing.T, port int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if sa, err := syscall.Getsockname(fd); err == nil {
			if a := addrPort(sa); a.Port() == uint16(port) && a.Addr().Unmap().String() == "127.0.0.1" {
				return fd
			}
		}
	}
	t.Fatalf("no socket on port %d", port)
	return -1
}

func TestKeepAliveIsSetOnTheDialledSocketOnceItLasts(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	with := ts.target()
	with.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Interval: 3 * time.Second, Count: 4}
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(with) })
	_, s := f.dial()
	tc := ts.accept(t)
	fd := socketWithLocalPort(t, tc.RemoteAddr().(*net.TCPAddr).Port)
	keepalive := func() int {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if keepalive() != 0 {
		t.Fatal("keepalive set at once: a short connection pays for it")
	}
	waitFor(t, 5*time.Second, "keepalive on the target's socket", func() bool { return keepalive() == 1 })
	for _, o := range []struct {
		name      string
		opt, want int
	}{{"TCP_KEEPIDLE", unix.TCP_KEEPIDLE, 7}, {"TCP_KEEPINTVL", unix.TCP_KEEPINTVL, 3}, {"TCP_KEEPCNT", unix.TCP_KEEPCNT, 4}} {
		if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, o.opt); err != nil || v != o.want {
			t.Errorf("%s = %d (%v), want %d", o.name, v, err, o.want)
		}
	}
	s.h.Close(Admin)
	s.wait(t, 5*time.Second)
}

// An idle proxied connection costs its Conn (and the caller's Session):
// 512 bytes is a malloc size class; one byte more costs 64.
func TestConnFitsInASizeClassOf512Bytes(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 512 {
		t.Fatalf("a Conn takes %d bytes, want at most 512", n)
	}
}
