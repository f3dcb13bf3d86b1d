package tcpproxy

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

// TestProxyHeaderMatchesTheLibrary: the loop path's PROXY header writer
// (both paths use it) writes what go-proxyproto writes, byte for
// byte, for every family mix, and allocates nothing.
func TestProxyHeaderMatchesTheLibrary(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"203.0.113.7:4242", "192.0.2.1:443"},
		{"[2001:db8::7]:4343", "[2001:db8::1]:443"},
		{"[::ffff:203.0.113.7]:1", "192.0.2.1:65535"}, // IPv4-mapped: TCP4
		{"203.0.113.7:4242", "[2001:db8::1]:443"},     // mixed: TCP6
		{"[fe80::1%lo]:80", "[fe80::2]:81"},           // a zone is not sent
		{"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65534"}, // the longest
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		for _, v := range []byte{1, 2} {
			want, err := proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)).Format()
			if err != nil {
				t.Fatalf("%s -> %s v%d: the library: %v", src, dst, v, err)
			}
			var buf [maxPreamble]byte
			got := appendProxyHeader(buf[:0], v, src, dst)
			if !bytes.Equal(got, want) {
				t.Errorf("%s -> %s v%d:\n got %q\nwant %q", src, dst, v, got, want)
			}
			if n := testing.AllocsPerRun(100, func() { _ = appendProxyHeader(buf[:0], v, src, dst) }); n != 0 {
				t.Errorf("%s -> %s v%d: %v allocations, want 0", src, dst, v, n)
			}
		}
	}
}
