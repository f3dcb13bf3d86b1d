package tcpproxy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Targets written as host names: the loops dial the addresses a lookup
// in the background found (resolve.go); the goroutine path resolves at
// each dial.

func TestNamedTargetsAreProxiedOnEitherPath(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "named")
		_, port, _ := net.SplitHostPort(b.addr)
		name := "localhost:" + port
		listen := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "names", "ports": []int{listen}, "bind": []string{"127.0.0.1"},
			"targets": []string{name}, "health_checks": noChecks}))
		tg := lookupTarget(t, "names", name)
		if onLoops() {
			waitFor(t, 10*time.Second, "the name's first lookup", func() bool { return tg.dial.Load() != nil })
		}
		before := countPaths()
		if got := echo(t, hostPort(listen), "by name"); got != "named" {
			t.Fatalf("answered by %q", got)
		}
		if d := countPaths().since(before); onLoops() && d.loop != 1 {
			t.Errorf("paths taken: %+v, want a loop once the name is resolved", d)
		}
		if res := tg.dial.Load(); onLoops() && (res == nil || len(res.addrs) == 0 || !res.addrs[0].Addr().IsLoopback()) {
			t.Errorf("resolution of %s: %+v, want a loopback address", name, res)
		}
	})
}

func TestUnresolvableNameIsMarkedDownAndOthersServe(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		good := newBackend(t, "good")
		const bad = "unresolvable!name:5432" // not a domain name: fails without asking DNS
		listen := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "unresolvable", "ports": []int{listen}, "bind": []string{"127.0.0.1"},
			"targets": []string{bad, good.addr}, "health_checks": noChecks}))
		tb := lookupTarget(t, "unresolvable", bad)
		if onLoops() {
			waitFor(t, 10*time.Second, "the name's first lookup", func() bool { return tb.dial.Load() != nil })
		}
		for i := range 6 {
			if got := echo(t, hostPort(listen), "x"); got != "good" {
				t.Fatalf("connection %d answered by %q", i, got)
			}
		}
		if tb.healthy.Load() {
			t.Error("a target whose name does not resolve is still marked up")
		}
		if st := tb.status(); !strings.Contains(st.LastError, "no such host") {
			t.Errorf("last error %q, want the lookup's", st.LastError)
		}
	})
}

// TestNameAddressesAreTriedInOrder: a name with several addresses is one
// target; when its first address refuses, the loop dials the next one,
// as Go's dialer does, and the target stays up.
func TestNameAddressesAreTriedInOrder(t *testing.T) {
	if !onLoops() {
		t.Skip("the goroutine path is forced: Go's dialer tries the addresses")
	}
	b := newBackend(t, "second")
	_, port, _ := net.SplitHostPort(b.addr)
	name := "localhost:" + port
	listen := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "addrs", "ports": []int{listen}, "bind": []string{"127.0.0.1"},
		"targets": []string{name}, "health_checks": noChecks, "dns_refresh": "1h"}))
	tg := lookupTarget(t, "addrs", name)
	waitFor(t, 10*time.Second, "the name's first lookup", func() bool { return tg.dial.Load() != nil })
	// As if the name had two addresses, the first one dead.
	p, _ := strconv.Atoi(port)
	refused := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), uint16(p))
	tg.dial.Store(&resolution{addrs: []netip.AddrPort{refused, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))}})
	before := countPaths()
	if got := echo(t, hostPort(listen), "second address"); got != "second" {
		t.Fatalf("answered by %q", got)
	}
	if d := countPaths().since(before); d.loop != 1 {
		t.Errorf("paths taken: %+v, want a loop", d)
	}
	if !tg.healthy.Load() || tg.dialErrors.Load() != 0 {
		t.Errorf("healthy %v, %d dial errors: want the target up, its first address's refusal not counted",
			tg.healthy.Load(), tg.dialErrors.Load())
	}
}
