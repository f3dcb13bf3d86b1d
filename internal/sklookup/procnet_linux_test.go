//go:build linux

package sklookup

import (
	"cmp"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Lines as a little-endian machine prints them in /proc/net/tcp{,6}.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0
   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0000000000000000 100 0 0 10 0
`

func TestParseListeners(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sample is in little-endian words")
	}
	got, err := parseListeners(strings.NewReader(procNetTCP))
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{netip.MustParseAddrPort("127.0.0.1:8080"), 4242},
		{netip.MustParseAddrPort("0.0.0.0:80"), 77},
		{netip.MustParseAddrPort("[::1]:443"), 99},
		{netip.MustParseAddrPort("[::ffff:127.0.0.1]:22"), 100},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parseListeners = %v, want %v (established sockets left out)", got, want)
	}
	for _, bad := range []string{"0100007F", "0100007F:XYZ", "01007F:0050", "zz00007F:0050"} {
		if _, err := parseHexAddrPort(bad); err == nil {
			t.Errorf("parseHexAddrPort(%q) succeeded", bad)
		}
	}
}

func TestOverlaps(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		route, listener netip.Addr
		want            bool
	}{
		{netip.Addr{}, a("10.0.0.1"), true},
		{a("0.0.0.0"), a("10.0.0.1"), true},
		{a("10.0.0.1"), a("0.0.0.0"), true},
		{a("10.0.0.1"), a("::"), true}, // a [::] listener may be dual-stack
		{a("10.0.0.1"), a("::ffff:10.0.0.1"), true},
		{a("10.0.0.1"), a("10.0.0.2"), false},
		{a("::1"), a("127.0.0.1"), false},
	} {
		if got := overlaps(c.route.Unmap(), c.listener); got != c.want {
			t.Errorf("overlaps(%v, %v) = %v, want %v", c.route, c.listener, got, c.want)
		}
	}
}

// sock_diag and /proc/net/tcp* list the same listeners (and no
// connection).
func TestDiagListenersMatchProcNet(t *testing.T) {
	if !inNetns(t) {
		return
	}
	listen(t, "tcp4", "127.0.0.1:0")
	listen(t, "tcp4", "0.0.0.0:0")
	listen(t, "tcp", "[::]:0")
	listen(t, "tcp6", "[::1]:0")
	connections(t, serving(t, 'A'), 10) // serving closes them at once: some TIME_WAIT too
	for _, fam := range families {
		diag, err := diagListeners(fam.family)
		if err != nil {
			t.Fatalf("diagListeners(%d): %v", fam.family, err)
		}
		proc, err := readListeners(fam.proc)
		if err != nil {
			t.Fatal(err)
		}
		sortListeners(diag)
		sortListeners(proc)
		if !slices.Equal(diag, proc) || len(diag) < 2 {
			t.Errorf("%s: sock_diag lists %v, /proc %v; want the same two or more", fam.proc, diag, proc)
		}
	}
}

func sortListeners(ls []Listener) {
	slices.SortFunc(ls, func(a, b Listener) int { return cmp.Compare(a.Inode, b.Inode) })
}

// connections opens n connections to ln, closed at the end of the test.
func connections(tb testing.TB, ln *net.TCPListener, n int) []net.Conn {
	tb.Helper()
	out := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

// BenchmarkListeners lists the namespace's listeners while 5,000
// connections are open (10,000 sockets, as on a busy proxy): over
// sock_diag, and by reading /proc/net/tcp*.
func BenchmarkListeners(b *testing.B) {
	if !benchInNetns(b) {
		return
	}
	ln := listen(b, "tcp4", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { c.Close() })
		}
	}()
	connections(b, ln, 5000)
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			if _, err := diagListeners(unix.AF_INET); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proc", func(b *testing.B) {
		for b.Loop() {
			if _, err := readListeners("/proc/net/tcp"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
