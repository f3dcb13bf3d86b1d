package tcpproxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Shared helpers of the in-process tests: real sockets on loopback and
// Caddy loaded for real with caddy.Load. Caddy's state is process-global,
// so these tests never run in parallel.

// backendPorts holds the port of every test backend ever started in this
// process. freePort never returns one: a stopped backend's port is free
// again, and a proxy listening there would answer the health probes meant
// for the dead backend.
var backendPorts sync.Map

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago and
// never belonged to a test backend.
func freePort(t testing.TB) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if _, taken := backendPorts.Load(port); !taken {
			return port
		}
	}
}

// freePorts returns n distinct free ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		if p := freePort(t); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// backend is a test target: it greets each connection with its name and a
// newline, then echoes. It counts the connections it accepted and can be
// stopped and restarted on the same address.
type backend struct {
	t        testing.TB
	name     string
	network  string
	addr     string
	accepted atomic.Int64
	active   atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	hold  chan struct{} // when non-nil, connections wait on it before echoing
}

func newBackend(t testing.TB, name string) *backend {
	return newBackendOn(t, name, "tcp", "127.0.0.1:0")
}

func newBackendOn(t testing.TB, name, network, addr string) *backend {
	t.Helper()
	b := &backend{t: t, name: name, network: network, conns: map[net.Conn]bool{}}
	b.listen(addr)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) listen(addr string) {
	b.t.Helper()
	ln, err := net.Listen(b.network, addr)
	if err != nil {
		b.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.mu.Lock()
	b.ln = ln
	b.addr = ln.Addr().String()
	backendPorts.Store(ln.Addr().(*net.TCPAddr).Port, true)
	b.mu.Unlock()
	go b.serve(ln)
}

func (b *backend) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.mu.Lock()
		b.conns[c] = true
		hold := b.hold
		b.mu.Unlock()
		go b.handle(c, hold)
	}
}

func (b *backend) handle(c net.Conn, hold chan struct{}) {
	b.active.Add(1)
	defer func() {
		b.active.Add(-1)
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	if _, err := io.WriteString(c, b.name+"\n"); err != nil {
		return
	}
	if hold != nil {
		<-hold
	}
	// A user-space copy: splicing would hold a pipe per connection, which
	// would blur the descriptor counts of the proxy under test.
	if _, err := io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4096)); err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
}

// stop closes the listener and every open connection.
func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	for c := range b.conns {
		c.Close()
	}
}

// restart listens again on the same address.
func (b *backend) restart() { b.listen(b.addr) }

// loadConfig runs Caddy in-process with the given tcpproxy app config
// (the value of apps.tcpproxy) and stops it when the test ends.
func loadConfig(t testing.TB, tcpproxyApp any) {
	t.Helper()
	if err := tryLoad(tcpproxyApp); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// tryLoad loads (or reloads) the config and returns Caddy's error.
func tryLoad(tcpproxyApp any) error {
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps":    map[string]any{"tcpproxy": tcpproxyApp},
	})
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

// app is shorthand for one app of the tcpproxy config.
type app = map[string]any

// proxyConfig is a tcpproxy app config holding the given apps.
func proxyConfig(apps ...app) map[string]any {
	return map[string]any{"apps": apps}
}

// addrs returns the backends' addresses.
func addrs(bs ...*backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.addr
	}
	return out
}

// greeting connects to addr and returns the name of the backend that
// answered (its greeting line).
func greeting(t testing.TB, addr string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading greeting through %s: %v", addr, err)
	}
	return strings.TrimSpace(name)
}

// dial connects to addr with a deadline for the whole exchange.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// echo connects to addr and runs echoOn.
func echo(t testing.TB, addr, msg string) (backendName string) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	return echoOn(t, c, msg)
}

// echoOn reads the backend's greeting on c (if not read yet), sends msg
// and checks that it comes back.
func echoOn(t testing.TB, c net.Conn, msg string) (backendName string) {
	t.Helper()
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting through %s: %v", c.RemoteAddr(), err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write through %s: %v", c.RemoteAddr(), err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("echo through %s: %v", c.RemoteAddr(), err)
	}
	if string(got) != msg {
		t.Fatalf("echo through %s: got %q, want %q", c.RemoteAddr(), got, msg)
	}
	return strings.TrimSpace(name)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedWithin reports whether the peer closes c (EOF or reset) within d,
// and what was read before.
func closedWithin(c net.Conn, d time.Duration) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	data, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(data)
	}
	return true, string(data)
}

// lookupTarget returns the shared state of a loaded target.
func lookupTarget(t testing.TB, appName, addr string) *target {
	t.Helper()
	var found *target
	targets.Range(func(k, v any) bool {
		if k == (targetKey{appName, addr}) {
			found = v.(*target)
			return false
		}
		return true
	})
	if found == nil {
		t.Fatalf("no target %s in app %s", addr, appName)
	}
	return found
}

func hostPort(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// testutilCounter reads a counter's current value.
func testutilCounter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// tryLoadWith loads (or reloads) a config like tryLoad, with top-level
// Caddy config keys (such as "admin" or "logging") set by extra. A nil
// tcpproxyApp leaves the tcpproxy app out of the config.
func tryLoadWith(tcpproxyApp any, extra map[string]any) error {
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
	}
	if tcpproxyApp != nil {
		cfg["apps"] = map[string]any{"tcpproxy": tcpproxyApp}
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return caddy.Load(b, true)
}

// withAdmin is the extra config of tryLoadWith that serves Caddy's admin
// API (status, /metrics) on adminAddr.
func withAdmin(adminAddr string) map[string]any {
	return map[string]any{"admin": map[string]any{"listen": adminAddr, "config": map[string]any{"persist": false}}}
}

// loadConfigWithAdmin is loadConfig with Caddy's admin API on a free
// loopback port. It returns the admin address; reload with
// tryLoadWith(cfg, withAdmin(addr)).
func loadConfigWithAdmin(t testing.TB, tcpproxyApp any) (adminAddr string) {
	t.Helper()
	adminAddr = hostPort(freePort(t))
	if err := tryLoadWith(tcpproxyApp, withAdmin(adminAddr)); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return adminAddr
}

// adminRequest sends a request to Caddy's admin API and returns the
// response with its body read. Right after a reload the old admin server
// may still hold the port for a moment, so connection errors are retried
// for a while; a new connection is used for every attempt.
func adminRequest(t testing.TB, method, adminAddr, path, accept string) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequest(method, "http://"+adminAddr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				return resp, body
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withDebugLogFile is the extra config of tryLoadWith that writes Caddy's
// logs, debug level included, as JSON lines to path.
func withDebugLogFile(path string) map[string]any {
	return map[string]any{"logging": map[string]any{"logs": map[string]any{"default": map[string]any{
		"level":   "DEBUG",
		"writer":  map[string]any{"output": "file", "filename": path},
		"encoder": map[string]any{"format": "json"},
	}}}}
}

// logEntries reads a JSON log file written by Caddy and returns the
// entries whose message is msg (all entries when msg is empty).
func logEntries(t testing.TB, path, msg string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			continue // a line being written
		}
		if msg == "" || e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// mustBeClosed connects to addr and expects the proxy to close the
// connection within a second without sending anything.
func mustBeClosed(t testing.TB, addr string) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	if closed, data := closedWithin(c, time.Second); !closed || data != "" {
		t.Fatalf("connection to %s: closed=%v, read %q; want closed within 1s, nothing read", addr, closed, data)
	}
}

// skipWithoutIPv6 skips a test on a machine without an IPv6 loopback.
func skipWithoutIPv6(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	ln.Close()
}

// acquireTargets returns the shared state of each target of app, creating
// the ones not seen before (they start healthy and ready), and records
// their configured weight and backup flag. Release with releaseTargets.
func acquireTargets(app string, cfgs []TargetConfig) []*target {
	out := make([]*target, len(cfgs))
	for i, c := range cfgs {
		t := acquireTarget(app, c.Address)
		t.setConfig(c.weight(), c.Backup, nil)
		out[i] = t
	}
	return out
}
