//go:build linux

package tcpproxy

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The sk_lookup listener mode, run in a private network namespace (see
// sklookup_helpers_linux_test.go).

// A 30,000-port app is served by one listening socket; each connection
// reaches the target with the port the client dialled as its local
// address; ports outside the range are refused. The status shows the mode
// and the steered ports.
func TestSkLookupServesRangeFromOneSocket(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	const low, n = 1025, 30000 // below the ephemeral range: the backend's and admin's ports are not in it
	target := newPortBackend(t)
	before := len(listeningSockets(t))
	cfg := steeredApp("wide", portRangeString(low, n), target)
	cfg["proxy_protocol"] = "v1"
	admin := loadConfigWithAdmin(t, proxyConfig(cfg))

	// One more listener for the app (the admin endpoint is the other).
	if got := len(listeningSockets(t)) - before; got != 2 {
		t.Fatalf("%d new listening sockets, want 2 (the app's one and the admin endpoint)", got)
	}
	for range 100 {
		mustSeePort(t, low+rand.IntN(n))
	}
	mustSeePort(t, low)
	mustSeePort(t, low+n-1)
	for _, p := range []int{low - 1, low + n, low + n + 1, 65535} {
		portRefused(t, p)
	}

	doc := getStatus(t, admin)
	if len(doc.Apps) != 1 || doc.Apps[0].Listener != "sk_lookup" || doc.Apps[0].SteeredPorts != n {
		t.Fatalf("status apps %+v, want one app with listener sk_lookup and %d steered ports", doc.Apps, n)
	}
}

// Stop unroutes everything and detaches the program: every port is
// refused, and no socket or engine reference is left.
func TestSkLookupStopRefusesEverythingAndDetaches(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	target := newPortBackend(t)
	cfg := steeredApp("gone", portRangeString(2000, 100), target)
	cfg["proxy_protocol"] = "v1"
	if err := tryLoad(proxyConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	mustSeePort(t, 2050)
	if n := attachedPrograms(t); n != 1 {
		t.Fatalf("%d sk_lookup programs attached while serving, want 1", n)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{2000, 2050, 2099} {
		portRefused(t, p)
	}
	if n := attachedPrograms(t); n != 0 {
		t.Fatalf("%d sk_lookup programs still attached after Stop, want 0", n)
	}
	sockets.mu.Lock()
	left := len(sockets.steered) + len(sockets.byAddr)
	sockets.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d sockets left in the pool after Stop", left)
	}
}

// A reload that drops a port refuses it once the old config has stopped
// (caddy.Load returns after that); an added port is served; the kept
// ports keep the same socket.
func TestSkLookupReloadAddsAndRemovesPorts(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	target := newPortBackend(t)
	cfg := func(ports ...any) map[string]any {
		c := steeredApp("moving", ports, target)
		c["proxy_protocol"] = "v1"
		return proxyConfig(c)
	}
	loadConfig(t, cfg("3000-3009", 3100))
	socketPort := steeredSocketPort(t, "moving")
	mustSeePort(t, 3100)
	portRefused(t, 3200)

	if err := tryLoad(cfg("3000-3009", 3200)); err != nil {
		t.Fatal(err)
	}
	portRefused(t, 3100)
	mustSeePort(t, 3200)
	mustSeePort(t, 3005)
	if p := steeredSocketPort(t, "moving"); p != socketPort {
		t.Fatalf("the reload replaced the app's socket (port %d, then %d)", socketPort, p)
	}
}

// A port that moves from one app to another follows it; a failed reload
// (a port of the new config taken by another socket) leaves every route
// of the running config as it was.
func TestSkLookupPortMovesBetweenAppsAndFailedReloadKeepsRoutes(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	a, b := newBackend(t, "a"), newBackend(t, "b")
	cfg := func(aPorts, bPorts []int) map[string]any {
		return proxyConfig(steeredApp("alpha", aPorts, a.addr), steeredApp("beta", bPorts, b.addr))
	}
	loadConfig(t, cfg([]int{4000, 4001}, []int{4100}))
	if got := greeting(t, hostPort(4001)); got != "a" {
		t.Fatalf("port 4001 answered by %q, want a", got)
	}
	if err := tryLoad(cfg([]int{4000}, []int{4100, 4001})); err != nil {
		t.Fatal(err)
	}
	if got := greeting(t, hostPort(4001)); got != "b" {
		t.Fatalf("port 4001 answered by %q after moving to beta, want b", got)
	}

	// 4200 is another socket's: the reload that would also move 4001 back
	// to alpha fails, and nothing changes.
	foreign := newBackendOn(t, "foreign", "tcp", hostPort(4200))
	err := tryLoad(cfg([]int{4000, 4001, 4200}, []int{4100}))
	if err == nil {
		t.Fatal("a config steering a port another socket listens on was loaded")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{`app "alpha"`, "port 4200", "127.0.0.1", "another listening socket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for port, want := range map[int]string{4000: "a", 4001: "b", 4100: "b", 4200: "foreign"} {
		if got := greeting(t, hostPort(port)); got != want {
			t.Errorf("after the failed reload, port %d answered by %q, want %q", port, got, want)
		}
	}
	_ = foreign
}

// Caddy's admin endpoint is another socket of the process: a range that
// covers it is refused, naming the port and the app.
func TestSkLookupRefusesRangeCoveringAdminAddress(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	b := newBackend(t, "b")
	admin := hostPort(5050)
	err := tryLoadWith(proxyConfig(steeredApp("greedy", "5000-5100", b.addr)), withAdmin(admin))
	t.Cleanup(func() { _ = caddy.Stop() })
	if err == nil {
		t.Fatal("a range covering the admin address was loaded")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{`app "greedy"`, "port 5050", "admin endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := attachedPrograms(t); n != 0 {
		t.Errorf("%d sk_lookup programs attached after the failed load, want 0", n)
	}
}

// auto uses sk_lookup where it is available.
func TestSkLookupAutoChoosesSkLookup(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	b := newBackend(t, "b")
	cfg := steeredApp("flexible", "9000-9099", b.addr)
	cfg["listener"] = "auto"
	loadConfig(t, proxyConfig(cfg))
	if r := lookupRunning(t, "flexible"); r.listener != listenerSkLookup || sockets.steeredPorts(r.steered) != 100 {
		t.Fatalf("auto chose listener %q with %d steered ports, want sk_lookup with 100",
			r.listener, sockets.steeredPorts(r.steered))
	}
	if name := echo(t, hostPort(9042), "auto"); name != "b" {
		t.Fatalf("port 9042 answered by %q", name)
	}
}

// An app on all interfaces takes IPv4 and IPv6 connections through one
// dual-stack socket; an app bound to ::1 takes IPv6 only, and an exact
// address wins over all interfaces.
func TestSkLookupAllInterfacesAndIPv6(t *testing.T) {
	if !inSkLookupNetns(t) {
		return
	}
	skipWithoutIPv6(t)
	all, six := newBackend(t, "all"), newBackend(t, "six")
	wide := steeredApp("wide", "9100-9199", all.addr)
	delete(wide, "bind")
	loadConfig(t, proxyConfig(wide))
	for _, addr := range []string{"127.0.0.1:9100", "127.0.0.2:9150", "[::1]:9199"} {
		if name := greeting(t, addr); name != "all" {
			t.Fatalf("%s answered by %q, want all", addr, name)
		}
	}
	if got := len(lookupRunning(t, "wide").steered); got != 1 {
		t.Fatalf("%d steered sockets for all interfaces, want 1 (dual-stack)", got)
	}
	// Moving 9150 to an app on ::1 alone: exact beats all interfaces.
	narrow := steeredApp("narrow", []int{9250}, six.addr)
	narrow["bind"] = []string{"::1"}
	if err := tryLoad(proxyConfig(wide, narrow)); err != nil {
		t.Fatal(err)
	}
	if name := greeting(t, "[::1]:9250"); name != "six" {
		t.Fatalf("[::1]:9250 answered by %q, want six", name)
	}
	portRefused(t, 9250) // not on IPv4
}
