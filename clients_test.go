package tcpproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/pires/go-proxyproto"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// Tests of accept_proxy_protocol, allow/deny and the per-client limits,
// with real sockets: each client is bound to its own 127.0.0.x address
// (Linux routes all of 127.0.0.0/8 to lo), so that the proxy sees distinct
// client IPs.

// dialFrom connects to addr from the loopback address src.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// tcpAddr parses "ip:port".
func tcpAddr(t testing.TB, s string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// headerBytes is a PROXY header (version 1 or 2) from src to dst.
func headerBytes(t testing.TB, version byte, src, dst string) []byte {
	t.Helper()
	return formatHeader(t, proxyproto.HeaderProxyFromAddrs(version, tcpAddr(t, src), tcpAddr(t, dst)))
}

func formatHeader(t testing.TB, h *proxyproto.Header) []byte {
	t.Helper()
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localHeader is a PROXY v2 LOCAL header: an outer balancer's health check.
func localHeader(t testing.TB) []byte {
	return formatHeader(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC})
}

// tryFrom connects to addr from src, sends preamble, and reports whether
// a greeting backend greeted the client (served) or the proxy closed the
// connection without a byte (refused). A served connection stays open.
func tryFrom(t testing.TB, src, addr string, preamble []byte) (net.Conn, bool) {
	t.Helper()
	c := dialFrom(t, src, addr)
	if len(preamble) > 0 {
		if _, err := c.Write(preamble); err != nil {
			t.Fatalf("writing to %s from %s: %v", addr, src, err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case err == nil:
		return c, true
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("from %s: neither served nor closed within 5s", src)
	case line != "":
		t.Fatalf("from %s: read %q, then %v", src, line, err)
	}
	return c, false
}

// mustServe and mustRefuse connect from src and check the outcome.
func mustServe(t testing.TB, src, addr string, preamble []byte) net.Conn {
	t.Helper()
	c, ok := tryFrom(t, src, addr, preamble)
	if !ok {
		t.Fatalf("client %s (preamble %q) refused, want it served", src, preamble)
	}
	return c
}

func mustRefuse(t testing.TB, src, addr string, preamble []byte) {
	t.Helper()
	c, ok := tryFrom(t, src, addr, preamble)
	if ok {
		t.Fatalf("client %s (preamble %q) served, want it refused", src, preamble)
	}
	c.Close()
}

// eventuallyServed polls until a client from src is served (what is
// being waited for); the connection stays open.
func eventuallyServed(t testing.TB, src, addr, what string) {
	t.Helper()
	waitFor(t, 10*time.Second, what, func() bool {
		c, ok := tryFrom(t, src, addr, nil)
		if !ok {
			c.Close()
		}
		return ok
	})
}

// rejected is the value of caddy_tcpproxy_rejected_connections_total.
func rejected(t testing.TB, app string, reason history.Reason) float64 {
	t.Helper()
	return testutilCounter(t, rejectedTotal.WithLabelValues(app, reason.String()))
}

// noChecks turns active health checks off, so that a test backend counts
// only the connections proxied to it.
var noChecks = map[string]any{"disabled": true}

func localPort(c net.Conn) int { return c.LocalAddr().(*net.TCPAddr).Port }

func TestAcceptProxyProtocolFromTrustedSourcesOnly(t *testing.T) {
	backend := newProxyProtocolBackend(t)
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	if err := tryLoadWith(proxyConfig(app{"name": "pp-in", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": []string{backend.addr}, "proxy_protocol": "v2", "access_log": true,
		"accept_proxy_protocol": []string{"127.0.0.2/32"}}), withAccessLogFile(logFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	addr := hostPort(port)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	forged := headerBytes(t, 1, "6.6.6.6:666", "192.0.2.1:443")

	type result struct{ src, dst string }
	wantLog := map[int]string{} // remote_port: remote_ip
	before := countPaths()
	for _, tc := range []struct {
		name, from string
		preamble   []byte
		// the payload follows only once the target was dialed, so that
		// no client byte is read along with the header
		later bool
		want  func(c net.Conn) result // our header to the target
		echo  []byte                  // what the backend gets after it
	}{
		{name: "v1 from a trusted source", from: "127.0.0.2",
			preamble: headerBytes(t, 1, "203.0.113.7:4242", "192.0.2.1:443"),
			want:     func(net.Conn) result { return result{"203.0.113.7:4242", "192.0.2.1:443"} }},
		{name: "v2 from a trusted source, payload later", from: "127.0.0.2", later: true,
			preamble: headerBytes(t, 2, "[2001:db8::7]:4343", "[2001:db8::1]:443"),
			want:     func(net.Conn) result { return result{"[2001:db8::7]:4343", "[2001:db8::1]:443"} }},
		{name: "v2 LOCAL from a trusted source keeps its own address", from: "127.0.0.2", preamble: localHeader(t),
			want: func(c net.Conn) result { return result{c.LocalAddr().String(), c.RemoteAddr().String()} }},
		{name: "a header from another source is payload", from: "127.0.0.3", preamble: forged,
			want: func(c net.Conn) result { return result{c.LocalAddr().String(), c.RemoteAddr().String()} },
			echo: append(append([]byte{}, forged...), payload...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.echo == nil {
				tc.echo = payload
			}
			c := dialFrom(t, tc.from, addr)
			dialed := backend.accepted.Load()
			go func() {
				if tc.later {
					_, _ = c.Write(tc.preamble)
					waitFor(t, 5*time.Second, "the dial to the target", func() bool { return backend.accepted.Load() > dialed })
					_, _ = c.Write(payload)
				} else {
					_, _ = c.Write(append(append([]byte{}, tc.preamble...), payload...))
				}
				_ = c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.echo) {
				t.Errorf("echoed %d bytes, want the %d bytes after the header (equal: %v)", len(got), len(tc.echo), bytes.Equal(got, tc.echo))
			}
			r := backend.next(t)
			if r.err != nil {
				t.Fatalf("target read no PROXY header: %v", r.err)
			}
			want := tc.want(c)
			if r.header.SourceAddr.String() != want.src || r.header.DestinationAddr.String() != want.dst {
				t.Errorf("our header to the target: %s -> %s, want %s -> %s",
					r.header.SourceAddr, r.header.DestinationAddr, want.src, want.dst)
			}
			ap := tcpAddr(t, want.src)
			wantLog[ap.Port] = ap.IP.String()
		})
	}
	// Between raw sockets, all of them: those whose header was read on
	// the relay (splice), the untrusted one on a loop (by default).
	if d := countPaths().since(before); d.generic != 0 || d.raw() != 4 || onLoops() && d.loop != 1 {
		t.Errorf("paths taken: %+v, want 4 between raw sockets, none generic, 1 on a loop", d)
	}

	waitFor(t, 10*time.Second, "an access log entry per connection", func() bool {
		return len(accessEntries(t, logFile)) >= len(wantLog)
	})
	entries := accessEntries(t, logFile)
	for port, ip := range wantLog {
		e := entries[port]
		if e == nil || e["remote_ip"] != ip || e["reason"] != "normal" || e["bytes_received"] == 0.0 {
			t.Errorf("access log entry for %s port %d: %v", ip, port, e)
		}
	}
}

func TestBadProxyHeadersAreRefusedBeforeAnyDial(t *testing.T) {
	old := proxyHeaderTimeout
	proxyHeaderTimeout = time.Second
	t.Cleanup(func() { proxyHeaderTimeout = old })
	b := newBackend(t, "b")
	port := freePort(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	if err := tryLoadWith(proxyConfig(app{"name": "pp-bad", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(b), "access_log": true, "accept_proxy_protocol": []string{"127.0.0.2"}, "health_checks": noChecks}),
		withAccessLogFile(logFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	addr := hostPort(port)

	v2 := headerBytes(t, 2, "203.0.113.7:4242", "192.0.2.1:443")
	oversizedV2 := append(append([]byte{}, v2[:14]...), 0, 0)
	binary.BigEndian.PutUint16(oversizedV2[14:], 5000)
	oversizedV2 = append(oversizedV2, make([]byte, 5000)...)
	badCommand := append([]byte{}, v2...)
	badCommand[12] = 0x23 // version 2, command 3
	cases := []struct {
		name       string
		send       []byte
		closeWrite bool
		slow       bool // refused only at the header timeout
	}{
		{name: "garbage", send: []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")},
		{name: "v1 not ending in CRLF", send: []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\n")},
		{name: "v1 truncated", send: []byte("PROXY TCP4 203.0.113.7 "), closeWrite: true},
		{name: "v2 truncated", send: v2[:20], closeWrite: true},
		{name: "v2 bad command", send: badCommand},
		{name: "v1 oversized", send: []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n")},
		{name: "v2 oversized", send: oversizedV2},
		{name: "closed at once", closeWrite: true},
		{name: "v2 slow", send: v2[:8], slow: true},
		{name: "silent", slow: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c := dialFrom(t, "127.0.0.2", addr)
			_, _ = c.Write(tc.send)
			if tc.closeWrite {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			closed, data := closedWithin(c, 5*time.Second)
			if !closed || data != "" {
				t.Fatalf("closed=%v after reading %q; want closed with nothing read", closed, data)
			}
			if took := time.Since(start); tc.slow && took < 900*time.Millisecond {
				t.Errorf("closed after %s, before the 1s header timeout", took)
			} else if !tc.slow && took > 900*time.Millisecond {
				t.Errorf("closed after %s, want at once", took)
			}
		})
	}
	if n := b.accepted.Load(); n != 0 {
		t.Errorf("the target got %d connections, want none", n)
	}
	if got := rejected(t, "pp-bad", reasonBadProxyHeader); got != float64(len(cases)) {
		t.Errorf("bad_proxy_header counted %v times, want %d", got, len(cases))
	}

	// A header in two parts within the timeout is accepted; a plain client
	// that waits for the target to speak first is served at once.
	c := dialFrom(t, "127.0.0.2", addr)
	_, _ = c.Write(v2[:10])
	time.Sleep(100 * time.Millisecond) // the slow sender under test
	_, _ = c.Write(v2[10:])
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatalf("a header sent in two parts: %v", err)
	}
	mustServe(t, "127.0.0.3", addr, nil)

	waitFor(t, 10*time.Second, "an access log entry per refusal", func() bool {
		n := 0
		for _, e := range accessEntries(t, logFile) {
			if e["reason"] == reasonBadProxyHeader.String() && e["remote_ip"] == "127.0.0.2" && e["attempts"] == 0.0 && e["level"] == "info" {
				n++
			}
		}
		return n == len(cases)
	})
}

func TestAllowAndDenyWithAndWithoutProxyHeader(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "b")
		port := freePort(t)
		logFile := filepath.Join(t.TempDir(), "access.log")
		if err := tryLoadWith(proxyConfig(app{"name": "acl", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": addrs(b), "access_log": true, "accept_proxy_protocol": []string{"127.0.0.2"}, "health_checks": noChecks,
			"allow": []string{"127.0.0.0/8", "198.51.100.0/24", "2001:db8:1::/48"},
			"deny":  []string{"::ffff:127.0.0.4", "198.51.100.66"}}), withAccessLogFile(logFile)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = caddy.Stop() })
		addr := hostPort(port)
		mappedV6 := formatHeader(t, &proxyproto.Header{Version: 2, Command: proxyproto.PROXY,
			TransportProtocol: proxyproto.TCPv6,
			SourceAddr:        &net.TCPAddr{IP: net.ParseIP("::ffff:198.51.100.66"), Port: 5003},
			DestinationAddr:   &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 443}})

		wantLog := map[int]map[string]any{} // by remote_port
		served, denied := 0, 0
		for _, tc := range []struct {
			name, from string
			preamble   []byte
			port       int    // the header's source port; 0: the socket's
			ip         string // the client address the proxy must see
			serve      bool
		}{
			{name: "allowed", from: "127.0.0.3", ip: "127.0.0.3", serve: true},
			{name: "denied (an IPv4-mapped entry)", from: "127.0.0.4", ip: "127.0.0.4"},
			{name: "allowed by its header", from: "127.0.0.2", port: 5001, ip: "198.51.100.1", serve: true,
				preamble: headerBytes(t, 1, "198.51.100.1:5001", "192.0.2.1:443")},
			{name: "denied by its header", from: "127.0.0.2", port: 5002, ip: "198.51.100.66",
				preamble: headerBytes(t, 2, "198.51.100.66:5002", "192.0.2.1:443")},
			{name: "denied by its header's IPv4-mapped address", from: "127.0.0.2", port: 5003, ip: "198.51.100.66",
				preamble: mappedV6},
			{name: "not allowed by its header", from: "127.0.0.2", port: 5004, ip: "203.0.113.9",
				preamble: headerBytes(t, 1, "203.0.113.9:5004", "192.0.2.1:443")},
			{name: "IPv6 not allowed by its header", from: "127.0.0.2", port: 5005, ip: "2001:db8::5",
				preamble: headerBytes(t, 2, "[2001:db8::5]:5005", "[2001:db8::1]:443")},
			{name: "IPv6 allowed by its header", from: "127.0.0.2", port: 5006, ip: "2001:db8:1::5", serve: true,
				preamble: headerBytes(t, 2, "[2001:db8:1::5]:5006", "[2001:db8::1]:443")},
			{name: "LOCAL keeps the connection's address", from: "127.0.0.2", ip: "127.0.0.2", serve: true,
				preamble: localHeader(t)},
			{name: "an untrusted source's header is not read", from: "127.0.0.5", ip: "127.0.0.5", serve: true,
				preamble: headerBytes(t, 1, "198.51.100.66:5007", "192.0.2.1:443")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, ok := tryFrom(t, tc.from, addr, tc.preamble)
				defer c.Close()
				if ok != tc.serve {
					t.Fatalf("served %v, want %v", ok, tc.serve)
				}
				p := tc.port
				if p == 0 {
					p = localPort(c)
				}
				wantLog[p] = map[string]any{"remote_ip": tc.ip, "remote_port": float64(p)}
				if ok {
					served++
				} else {
					denied++
					wantLog[p]["reason"] = reasonDenied.String()
				}
			})
		}
		if got := b.accepted.Load(); got != int64(served) {
			t.Errorf("the target got %d connections, want the %d served", got, served)
		}
		if got := rejected(t, "acl", reasonDenied); got != float64(denied) {
			t.Errorf("denied counted %v, want %d", got, denied)
		}
		waitFor(t, 10*time.Second, "an access log entry per connection", func() bool {
			return len(accessEntries(t, logFile)) >= len(wantLog)
		})
		entries := accessEntries(t, logFile)
		for port, want := range wantLog {
			for k, v := range want {
				if entries[port][k] != v {
					t.Errorf("access log entry of port %d: %s = %v, want %v (%v)", port, k, entries[port][k], v, entries[port])
				}
			}
		}
	})
}

func TestMaxConnectionsPerClientIsPerIPAndFreesOnClose(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "b")
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "per-client", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": addrs(b), "max_connections_per_client": 2, "health_checks": noChecks}))
		addr := hostPort(port)
		first := mustServe(t, "127.0.0.2", addr, nil)
		mustServe(t, "127.0.0.2", addr, nil)
		mustRefuse(t, "127.0.0.2", addr, nil)
		mustServe(t, "127.0.0.3", addr, nil) // another IP has its own count
		mustServe(t, "127.0.0.3", addr, nil)
		if got := rejected(t, "per-client", reasonClientLimit); got != 1 {
			t.Errorf("client_limit counted %v, want 1", got)
		}
		if got := b.accepted.Load(); got != 4 {
			t.Errorf("the target got %d connections, want the 4 served", got)
		}
		first.Close()
		eventuallyServed(t, "127.0.0.2", addr, "a slot for 127.0.0.2 once one of its connections ended")
	})
}

func TestClientRateLimitRefusesThenServesAfterTheWindow(t *testing.T) {
	b := newBackend(t, "b")
	port := freePort(t)
	const window = time.Second
	loadConfig(t, proxyConfig(app{"name": "rate", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(b), "client_rate_limit": map[string]any{"connections": 3, "window": "1s"}}))
	addr := hostPort(port)
	start := time.Now()
	for range 3 {
		mustServe(t, "127.0.0.2", addr, nil).Close()
	}
	mustRefuse(t, "127.0.0.2", addr, nil)
	mustServe(t, "127.0.0.3", addr, nil).Close() // another IP has its own budget
	if time.Since(start) >= window {
		t.Skip("the machine is too slow to test a 1s window")
	}
	if got := rejected(t, "rate", reasonRateLimited); got != 1 {
		t.Errorf("rate_limited counted %v, want 1", got)
	}
	var again time.Duration
	waitFor(t, 10*time.Second, "127.0.0.2 served again", func() bool {
		c, ok := tryFrom(t, "127.0.0.2", addr, nil)
		c.Close()
		again = time.Since(start)
		return ok
	})
	if again < window {
		t.Errorf("served again %s after the first connection, within the %s window", again, window)
	}
}

func TestPerClientCountsSurviveReload(t *testing.T) {
	b := newBackend(t, "b")
	port := freePort(t)
	cfg := func(rate int) map[string]any {
		return proxyConfig(app{"name": "keep", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": addrs(b), "max_connections_per_client": 1,
			"client_rate_limit": map[string]any{"connections": rate, "window": "1h"}})
	}
	loadConfig(t, cfg(100))
	addr := hostPort(port)
	held := mustServe(t, "127.0.0.2", addr, nil)
	lim := appStateOf(t, "keep").limiter
	other := netip.MustParseAddr("127.0.0.3")
	closed := func() bool { return lim.Active(other) == 0 }
	mustServe(t, "127.0.0.3", addr, nil).Close()
	waitFor(t, 10*time.Second, "the end of 127.0.0.3's connection", closed)
	if err := tryLoad(cfg(2)); err != nil {
		t.Fatal(err)
	}
	if now := appStateOf(t, "keep").limiter; now != lim {
		t.Fatal("the reload replaced the app's limiter")
	}
	mustRefuse(t, "127.0.0.2", addr, nil) // its open connection still counts
	// 127.0.0.3 had one connection of its 2 an hour: one more.
	mustServe(t, "127.0.0.3", addr, nil).Close()
	waitFor(t, 10*time.Second, "the end of 127.0.0.3's connection", closed)
	mustRefuse(t, "127.0.0.3", addr, nil)
	if got := rejected(t, "keep", reasonRateLimited); got != 1 {
		t.Errorf("rate_limited counted %v, want 1", got)
	}
	held.Close() // accepted by the old config: released on the same limiter
	eventuallyServed(t, "127.0.0.2", addr, "127.0.0.2 served again")
}

// TestBehindCaddyL4Proxy puts caddy-l4's own proxy handler, sending a
// PROXY header, in front of an app that trusts it: the client's address
// reaches the target in the app's own PROXY header.
func TestBehindCaddyL4Proxy(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			backend := newProxyProtocolBackend(t)
			ports := freePorts(t, 2)
			outer, inner := hostPort(ports[0]), hostPort(ports[1])
			if err := tryLoadWith(nil, map[string]any{"apps": map[string]any{
				"layer4": map[string]any{"servers": map[string]any{"outer": map[string]any{
					"listen": []string{outer},
					"routes": []any{map[string]any{"handle": []any{map[string]any{
						"handler": "proxy", "proxy_protocol": version,
						"upstreams": []any{map[string]any{"dial": []string{inner}}}}}}},
				}}},
				"tcpproxy": proxyConfig(app{"name": "inner", "ports": []int{ports[1]}, "bind": []string{"127.0.0.1"},
					"targets": []string{backend.addr}, "proxy_protocol": "v2", "health_checks": noChecks,
					"accept_proxy_protocol": []string{"127.0.0.1"}, "allow": []string{"127.0.0.3"}}),
			}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = caddy.Stop() })
			c := dialFrom(t, "127.0.0.3", outer)
			roundTrip(t, c, payloadSize)
			got := backend.next(t)
			if got.err != nil {
				t.Fatalf("target read no PROXY header: %v", got.err)
			}
			if src := got.header.SourceAddr.String(); src != c.LocalAddr().String() {
				t.Errorf("the target sees the client as %s, want %s", src, c.LocalAddr())
			}
			if got.payload != payloadSize {
				t.Errorf("the target got %d bytes after the header, want %d", got.payload, payloadSize)
			}
			mustRefuse(t, "127.0.0.4", outer, nil) // allow applies to the address in caddy-l4's header
		})
	}
}

// TestIPHashUsesTheProxyHeaderAddress: behind a trusted source, ip_hash
// picks the target of the header's address, the same as for that client
// connecting directly.
func TestIPHashUsesTheProxyHeaderAddress(t *testing.T) {
	bs := []*backend{newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")}
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "hash-pp", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(bs...), "lb_policy": "ip_hash", "health_checks": noChecks,
		"accept_proxy_protocol": []string{"127.0.0.2"}}))
	addr := hostPort(port)
	used := map[string]bool{}
	for i := 3; i < 33; i++ {
		client := fmt.Sprintf("127.0.0.%d", i)
		c := dialFrom(t, "127.0.0.2", addr)
		if _, err := c.Write(headerBytes(t, 2, client+":4000", "192.0.2.1:443")); err != nil {
			t.Fatal(err)
		}
		viaHeader, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("client %s behind 127.0.0.2: %v", client, err)
		}
		c.Close()
		direct := greetingFrom(t, client, addr)
		if strings.TrimSpace(viaHeader) != direct {
			t.Errorf("client %s: %s through the trusted source, %s directly", client, strings.TrimSpace(viaHeader), direct)
		}
		used[direct] = true
	}
	if len(used) < 2 {
		t.Errorf("30 clients all went to %v: the header's address is not what is hashed", used)
	}
}
