//go:build linux

package sklookup

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

func TestRangeServedByOneSocket(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s := acquire(t)
	ln := listen(t, "tcp4", "127.0.0.1:0")
	serve(t, ln, 'A')
	const first, n = 20000, 30000
	route(t, s, lo4, portRange(first, n), bind(t, s, ln))

	own := uint16(ln.Addr().(*net.TCPAddr).Port)
	for range 100 {
		mustReach(t, netip.AddrPortFrom(lo4, uint16(first+rand.IntN(n))), 'A')
	}
	for _, p := range []uint16{first - 1, first + n, 1024, 65535} {
		if p != own {
			mustRefuse(t, netip.AddrPortFrom(lo4, p))
		}
	}
	// The route is for 127.0.0.1 only.
	mustRefuse(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), first))
}
