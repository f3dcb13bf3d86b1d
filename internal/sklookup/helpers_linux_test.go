//go:build linux

package sklookup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listen opens a plain-TCP (not MPTCP) listener closed at the end of the
// test.
func listen(tb testing.TB, network, addr string) *net.TCPListener {
	tb.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		tb.Fatalf("listen %s %s: %v", network, addr, err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// serve answers every connection on ln with tag and the port of the
// connection's LocalAddr, then closes it; it stops when ln is closed.
func serve(tb testing.TB, ln net.Listener, tag byte) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			port := uint16(c.LocalAddr().(*net.TCPAddr).Port)
			c.Write([]byte{tag, byte(port >> 8), byte(port)})
			c.Close()
		}
	}()
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
}

// answer is what a server started by serve said.
type answer struct {
	tag  byte
	port uint16 // the port the server saw as its local one
}

// ask connects to addr and reads the server's answer.
func ask(addr netip.AddrPort) (answer, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return answer{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [3]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return answer{}, fmt.Errorf("reading the answer from %s: %w", addr, err)
	}
	return answer{tag: b[0], port: binary.BigEndian.Uint16(b[1:])}, nil
}

// mustReach checks that a connection to addr is served by the server
// tagged tag, which sees the dialled port as its local port.
func mustReach(tb testing.TB, addr netip.AddrPort, tag byte) {
	tb.Helper()
	a, err := ask(addr)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", addr, err)
	}
	if a.tag != tag || a.port != addr.Port() {
		tb.Fatalf("connection to %s: served by %q seeing local port %d, want %q seeing %d",
			addr, a.tag, a.port, tag, addr.Port())
	}
}

// mustRefuse checks that a connection to addr is refused (RST).
func mustRefuse(tb testing.TB, addr netip.AddrPort) {
	tb.Helper()
	a, err := ask(addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		tb.Fatalf("connecting to %s: got answer %+v, error %v; want connection refused", addr, a, err)
	}
}

func portRange(first, n int) []uint16 {
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = uint16(first + i)
	}
	return ports
}

func acquire(tb testing.TB) *Steering {
	tb.Helper()
	s, err := Acquire()
	if err != nil {
		tb.Fatalf("Acquire: %v", err)
	}
	tb.Cleanup(func() { s.Release() })
	return s
}

func bind(tb testing.TB, s *Steering, ln *net.TCPListener) Socket {
	tb.Helper()
	sock, err := s.Bind(ln)
	if err != nil {
		tb.Fatalf("Bind %s: %v", ln.Addr(), err)
	}
	return sock
}

// serving is a new listener on 127.0.0.1, answering with tag.
func serving(tb testing.TB, tag byte) *net.TCPListener {
	tb.Helper()
	ln := listen(tb, "tcp4", "127.0.0.1:0")
	serve(tb, ln, tag)
	return ln
}

// served is a new IPv4 listener on addr, answering with tag and bound to s.
func served(tb testing.TB, s *Steering, addr string, tag byte) (*net.TCPListener, Socket) {
	tb.Helper()
	ln := listen(tb, "tcp4", addr)
	serve(tb, ln, tag)
	return ln, bind(tb, s, ln)
}

// steered is a Steering with one listener on 127.0.0.1 answering with
// tag, routed n ports of 127.0.0.1 from first on.
type steered struct {
	s     *Steering
	ln    *net.TCPListener
	sock  Socket
	ports []uint16
}

func steer(tb testing.TB, tag byte, first, n int) steered {
	tb.Helper()
	st := steered{s: acquire(tb), ports: portRange(first, n)}
	st.ln, st.sock = served(tb, st.s, "127.0.0.1:0", tag)
	route(tb, st.s, lo4, st.ports, st.sock)
	return st
}

func route(tb testing.TB, s *Steering, addr netip.Addr, ports []uint16, sock Socket) {
	tb.Helper()
	if err := s.Route(addr, ports, sock); err != nil {
		tb.Fatalf("Route %s (%d ports) to %v: %v", addr, len(ports), sock, err)
	}
}

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.IPv6Loopback()
)
