//go:build linux

package sklookup

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRangeServedByOneSocket(t *testing.T) {
	if !inNetns(t) {
		return
	}
	const first, n = 20000, 30000
	own := tcpPort(steer(t, 'A', first, n).ln)
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

func TestExactAddressBeatsWildcard(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s := acquire(t)
	_, wsock := served(t, s, "0.0.0.0:0", 'W')
	_, xsock := served(t, s, "127.0.0.1:0", 'X')
	ports := portRange(7000, 10)
	route(t, s, netip.IPv4Unspecified(), ports, wsock)
	three := netip.MustParseAddr("127.0.0.3")
	route(t, s, three, ports[:5], xsock)

	mustReach(t, netip.AddrPortFrom(three, 7000), 'X')
	mustReach(t, netip.AddrPortFrom(three, 7004), 'X')
	mustReach(t, netip.AddrPortFrom(three, 7005), 'W')
	mustReach(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 7000), 'W')

	// Without the exact route, the wildcard takes the address again.
	if err := s.Unroute(three, ports[:5], xsock); err != nil {
		t.Fatal(err)
	}
	mustReach(t, netip.AddrPortFrom(three, 7000), 'W')
}

func TestIPv6(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s := acquire(t)
	ports := portRange(8000, 100)

	// A dual-stack [::] socket takes both families on a wildcard route.
	dual := listen(t, "tcp", "[::]:0")
	serve(t, dual, 'D')
	route(t, s, netip.Addr{}, ports[:50], bind(t, s, dual))
	mustReach(t, netip.AddrPortFrom(lo6, 8001), 'D')
	mustReach(t, netip.AddrPortFrom(lo4, 8002), 'D')

	// An IPv6-only socket takes IPv6 alone, and refuses an IPv4 route.
	v6 := listen(t, "tcp6", "[::1]:0")
	serve(t, v6, '6')
	sock := bind(t, s, v6)
	route(t, s, netip.Addr{}, ports[50:], sock)
	mustReach(t, netip.AddrPortFrom(lo6, 8050), '6')
	mustRefuse(t, netip.AddrPortFrom(lo4, 8050))
	err := s.Route(lo4, ports[50:], sock)
	if err == nil || !strings.Contains(err.Error(), "IPv6-only") {
		t.Fatalf("routing IPv4 to an IPv6-only socket: %v, want an error saying it is IPv6-only", err)
	}

	// An exact IPv6 address beats the IPv6 wildcard.
	route(t, s, lo6, ports[:1], sock)
	mustReach(t, netip.AddrPortFrom(lo6, 8000), '6')
	mustReach(t, netip.AddrPortFrom(lo4, 8000), 'D')
}

func TestUnrouteRefusesThePort(t *testing.T) {
	if !inNetns(t) {
		return
	}
	st := steer(t, 'A', 9000, 10)
	s, sock, ports := st.s, st.sock, st.ports
	mustReach(t, netip.AddrPortFrom(lo4, 9003), 'A')

	if err := s.Unroute(lo4, ports[3:4], sock); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, netip.AddrPortFrom(lo4, 9003))
	mustReach(t, netip.AddrPortFrom(lo4, 9004), 'A')

	// Unbind takes the remaining routes with it.
	if err := s.Unbind(sock); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, netip.AddrPortFrom(lo4, 9004))
	if err := s.Route(lo4, ports, sock); err == nil {
		t.Fatal("Route with an unbound socket succeeded")
	}
}

// A reload rewrites the routes to the new config's socket while clients
// connect: no connection may be refused or reset, and every connection
// made after Route returned reaches the new socket.
func TestRerouteMovesNewConnectionsAtomically(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s := acquire(t)
	oldLn, oldSock := served(t, s, "127.0.0.1:0", 'O')
	newLn := serving(t, 'N')
	ports := portRange(10000, 1000)
	route(t, s, lo4, ports, oldSock)

	const before, after = 300, 300
	var rerouted atomic.Bool
	type result struct {
		a      answer
		err    error
		routed bool // Route had returned before the dial
	}
	results := make(chan result, 2*(before+after))
	started := make(chan struct{})
	go func() {
		defer close(results)
		deadline := time.Now().Add(30 * time.Second)
		afterCount := 0
		for i := 0; afterCount < after && i < 20*(before+after) && time.Now().Before(deadline); i++ {
			if i == before {
				close(started)
			}
			routed := rerouted.Load()
			if routed {
				afterCount++
			}
			a, err := ask(netip.AddrPortFrom(lo4, ports[rand.IntN(len(ports))]))
			select {
			case results <- result{a, err, routed}:
			default: // bounded: the loop is too, so this never drops in practice
			}
		}
	}()
	<-started
	newSock := bind(t, s, newLn)
	route(t, s, lo4, ports, newSock)
	rerouted.Store(true)

	var total, toNew, late int
	for r := range results {
		total++
		if r.err != nil {
			t.Errorf("connection %d failed: %v", total, r.err)
			continue
		}
		if r.a.tag == 'N' {
			toNew++
		}
		if r.routed {
			late++
			if r.a.tag != 'N' {
				t.Errorf("connection %d, made after Route returned, reached the old socket", total)
			}
		}
	}
	if late < after {
		t.Fatalf("only %d of %d connections after the reroute were made in time", late, after)
	}
	t.Logf("%d connections, %d to the new socket, 0 refused or reset", total, toNew)

	// The old config stops: its Unroute leaves the new routes alone.
	if err := s.Unroute(lo4, ports, oldSock); err != nil {
		t.Fatal(err)
	}
	if err := s.Unbind(oldSock); err != nil {
		t.Fatal(err)
	}
	oldLn.Close()
	mustReach(t, netip.AddrPortFrom(lo4, 10000), 'N')
	mustReach(t, netip.AddrPortFrom(lo4, 10999), 'N')
}

// A socket kept across a reload is bound by both configs: they share its
// slot, and the old config's Unroute and Unbind leave the new config's
// routes alone.
func TestSameSocketBoundTwice(t *testing.T) {
	if !inNetns(t) {
		return
	}
	oldCfg, newCfg := acquire(t), acquire(t)
	ln := listen(t, "tcp4", "127.0.0.1:0")
	serve(t, ln, 'A')
	ports := portRange(11000, 20)
	a := bind(t, oldCfg, ln)
	route(t, oldCfg, lo4, ports[:10], a)
	b := bind(t, newCfg, ln)
	if a.Slot() != b.Slot() || a == b {
		t.Fatalf("the same socket bound twice: %v and %v, want two registrations of one slot", a, b)
	}
	route(t, newCfg, lo4, ports[5:], b)

	if err := oldCfg.Unroute(lo4, ports[:10], a); err != nil {
		t.Fatal(err)
	}
	if err := oldCfg.Release(); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, netip.AddrPortFrom(lo4, 11004))
	mustReach(t, netip.AddrPortFrom(lo4, 11005), 'A')
	mustReach(t, netip.AddrPortFrom(lo4, 11019), 'A')
	if err := oldCfg.Route(lo4, ports, a); err == nil {
		t.Fatal("Route on a released Steering succeeded")
	}
	if err := oldCfg.Release(); err == nil {
		t.Fatal("a second Release succeeded")
	}
}

func TestFreedSlotsAreReused(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s := acquire(t)
	a := bind(t, s, listen(t, "tcp4", "127.0.0.1:0"))
	b := bind(t, s, listen(t, "tcp4", "127.0.0.1:0"))
	if a.Slot() == b.Slot() {
		t.Fatalf("two sockets share slot %d", a.Slot())
	}
	if err := s.Unbind(a); err != nil {
		t.Fatal(err)
	}
	c := bind(t, s, listen(t, "tcp4", "127.0.0.1:0"))
	if c.Slot() != a.Slot() {
		t.Fatalf("new socket got slot %d, want the freed slot %d", c.Slot(), a.Slot())
	}
}

func TestReleaseDetaches(t *testing.T) {
	if !inNetns(t) {
		return
	}
	first, err := Acquire()
	if err != nil {
		t.Fatal(err)
	}
	second, err := Acquire()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "tcp4", "127.0.0.1:0")
	serve(t, ln, 'A')
	ports := portRange(12000, 100)
	route(t, second, lo4, ports, bind(t, second, ln))
	if n := attachedPrograms(t); n != 1 {
		t.Fatalf("%d sk_lookup programs attached to the namespace, want 1", n)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	mustReach(t, netip.AddrPortFrom(lo4, 12050), 'A')

	if err := second.Release(); err != nil {
		t.Fatal(err)
	}
	if n := attachedPrograms(t); n != 0 {
		t.Fatalf("%d sk_lookup programs still attached after the last Release", n)
	}
	if shared.link != nil || shared.objs != nil {
		t.Fatal("the engine kept its link or maps after the last Release")
	}
	for _, p := range []uint16{12000, 12050, 12099} {
		mustRefuse(t, netip.AddrPortFrom(lo4, p))
	}
}

// attachedPrograms counts the sk_lookup programs attached to this network
// namespace, whoever attached them.
func attachedPrograms(t *testing.T) int {
	t.Helper()
	n, err := AttachedPrograms()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBindRefusesMPTCP(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s := acquire(t)
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if proto := socketProtocol(t, ln.(*net.TCPListener)); proto != ipprotoMPTCP {
		skipOrFail(t, "asked for MPTCP, got a socket of protocol %d (net.mptcp.enabled=0?)", proto)
	}
	_, err = s.Bind(ln.(*net.TCPListener))
	if err == nil || !strings.Contains(err.Error(), "SetMultipathTCP(false)") {
		t.Fatalf("Bind of an MPTCP listener: %v, want an error naming SetMultipathTCP(false)", err)
	}
}

func TestBindAndRouteErrors(t *testing.T) {
	if !inNetns(t) {
		return
	}
	s, other := acquire(t), acquire(t)
	ln := listen(t, "tcp4", "127.0.0.1:0")
	sock := bind(t, s, ln)

	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, f := range map[string]func() error{
		"not listening":  func() error { _, err := s.Bind(c.(*net.TCPConn)); return err },
		"port 0":         func() error { return s.Route(lo4, []uint16{80, 0}, sock) },
		"IPv6 on IPv4":   func() error { return s.Route(lo6, []uint16{80}, sock) },
		"zone":           func() error { return s.Route(netip.MustParseAddr("fe80::1%lo"), []uint16{80}, sock) },
		"other's socket": func() error { return other.Route(lo4, []uint16{80}, sock) },
		"other's unbind": func() error { return other.Unbind(sock) },
		"unknown socket": func() error { return s.Unbind(Socket{id: 999999}) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestForeignListeners(t *testing.T) {
	if !inNetns(t) {
		return
	}
	plain := listen(t, "tcp4", "127.0.0.1:0")
	plain6 := listen(t, "tcp6", "[::1]:0")
	steered := listen(t, "tcp4", "127.0.0.1:0")
	p, p6, ps := tcpPort(plain), tcpPort(plain6), tcpPort(steered)
	ino, err := SocketInode(plain)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := SocketInode(steered)
	if err != nil {
		t.Fatal(err)
	}
	ports := []uint16{p, p6, ps, 1}

	got, err := ForeignListeners(lo4, ports, []uint64{ours})
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{{netip.AddrPortFrom(lo4, p), ino}}
	if !slices.Equal(got, want) {
		t.Fatalf("ForeignListeners(127.0.0.1) = %v, want %v", got, want)
	}
	got, _ = ForeignListeners(netip.Addr{}, ports, []uint64{ours})
	if len(got) != 2 || !slices.ContainsFunc(got, func(l Listener) bool { return l.Addr == netip.AddrPortFrom(lo6, p6) }) {
		t.Fatalf("ForeignListeners(all addresses) = %v, want the IPv4 and the IPv6 listener", got)
	}
	if got, _ := ForeignListeners(netip.MustParseAddr("127.0.0.2"), ports, []uint64{ours}); len(got) != 0 {
		t.Fatalf("ForeignListeners(127.0.0.2) = %v, want none: nothing listens there", got)
	}
	if got, _ := ForeignListeners(lo4, ports, []uint64{ours, ino}); len(got) != 0 {
		t.Fatalf("ForeignListeners with both sockets ours = %v, want none", got)
	}
}

func tcpPort(ln *net.TCPListener) uint16 { return uint16(ln.Addr().(*net.TCPAddr).Port) }

func socketProtocol(t *testing.T, ln *net.TCPListener) int {
	raw, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var proto int
	raw.Control(func(fd uintptr) { proto, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) })
	if err != nil {
		t.Fatal(err)
	}
	return proto
}

// A Route that fails part way (here: the route map is full) leaves the
// routes as they were before it.
func TestFailedRouteChangesNothing(t *testing.T) {
	if !inNetns(t) {
		return
	}
	saved := capacity
	t.Cleanup(func() { capacity = saved })
	capacity.routes = 100
	s := acquire(t)
	_, asock := served(t, s, "127.0.0.1:0", 'A')
	_, bsock := served(t, s, "127.0.0.1:0", 'B')
	route(t, s, lo4, portRange(13001, 60), asock)

	// 13031-13060 are rewritten, 13061-13100 fill the map, 13101 fails.
	err := s.Route(lo4, portRange(13031, 100), bsock)
	if err == nil || !strings.Contains(err.Error(), "at most 100 routes") {
		t.Fatalf("Route beyond the map's size: %v, want an error naming the limit", err)
	}
	t.Log(err)
	mustReach(t, netip.AddrPortFrom(lo4, 13031), 'A')
	mustReach(t, netip.AddrPortFrom(lo4, 13060), 'A')
	mustRefuse(t, netip.AddrPortFrom(lo4, 13061))
	mustRefuse(t, netip.AddrPortFrom(lo4, 13100))

	// The mirror agrees with the map: the old routes can still be removed,
	// and the freed room used.
	if err := s.Unroute(lo4, portRange(13001, 60), asock); err != nil {
		t.Fatal(err)
	}
	route(t, s, lo4, portRange(13001, 100), bsock)
	mustReach(t, netip.AddrPortFrom(lo4, 13100), 'B')
}
