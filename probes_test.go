package tcpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Application-level probes through the whole plugin, against real
// servers: which target gets the clients follows what the probes see.

// startRedis runs a real redis-server on a free loopback port, a replica
// of primary when primary is not "", and returns its address once it
// answers PING. The test's cleanup kills it by PID.
func startRedis(t *testing.T, primary string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and redis-server is missing: %v", err)
		}
		t.Skipf("redis-server is missing (%v): install it to run this test", err)
	}
	port := freePort(t)
	backendPorts.Store(port, true)
	dir := t.TempDir()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no", "--loglevel", "warning", "--logfile", filepath.Join(dir, "redis.log")}
	if primary != "" {
		host, pport, _ := net.SplitHostPort(primary)
		args = append(args, "--replicaof", host, pport)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID
		_ = cmd.Wait()
	})
	addr := hostPort(port)
	waitFor(t, 20*time.Second, "redis-server on "+addr+" to answer PING", func() bool {
		reply, err := redisCommand(addr, "PING")
		return err == nil && reply == "+PONG"
	})
	return addr
}

// redisCommand sends one inline command and returns the first reply line.
func redisCommand(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// redisServedBy connects through the proxy, asks INFO server and returns
// the tcp_port of the redis-server that answered.
func redisServedBy(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "INFO server\r\n"); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no reply: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || !strings.HasPrefix(head, "$") {
		return "", fmt.Errorf("reply %q is not a bulk string", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if p, ok := strings.CutPrefix(line, "tcp_port:"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("no tcp_port in %q", body)
}

// A Redis primary and its replica behind one app probed with
// `info replication` / `role:master`: only the primary gets clients; after
// a failover (replica promoted, then the old primary demoted) the clients
// move to the new primary within a few seconds, and no client connection
// fails meanwhile.
func TestRedisPrimaryProbeFollowsFailover(t *testing.T) {
	primary := startRedis(t, "")
	replica := startRedis(t, primary)
	_, primaryPort, _ := net.SplitHostPort(primary)
	_, replicaPort, _ := net.SplitHostPort(replica)
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "redis", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": []string{primary, replica},
		"health_checks": map[string]any{"interval": "200ms", "timeout": "500ms",
			"send": "info replication\r\n", "expect": "role:master"}}))
	tr := lookupTarget(t, "redis", replica)
	waitFor(t, 10*time.Second, "the replica to be marked down", func() bool { return !tr.healthy.Load() })
	if st := tr.status(); !strings.Contains(st.LastError, `no "role:master" within 500ms, got "$`) ||
		!strings.Contains(st.LastError, `role:slave`) {
		t.Errorf("replica's last_error %q: want what was expected and what came", st.LastError)
	}
	t.Logf("the replica's last_error: %s", tr.status().LastError)
	for i := 0; i < 20; i++ {
		if got, err := redisServedBy(hostPort(port)); err != nil || got != primaryPort {
			t.Fatalf("client %d: served by %q (%v), want the primary %s", i, got, err, primaryPort)
		}
	}

	for addr, cmd := range map[string]string{replica: "REPLICAOF NO ONE", primary: "REPLICAOF 127.0.0.1 " + replicaPort} {
		if reply, err := redisCommand(addr, cmd); err != nil || reply != "+OK" {
			t.Fatalf("%s on %s: %q %v", cmd, addr, reply, err)
		}
	}
	demoted := time.Now()
	var lastOld time.Duration
	clients, streak := 0, 0
	for streak < 30 {
		if time.Since(demoted) > 20*time.Second {
			t.Fatalf("clients still reach the old primary %s after the failover", time.Since(demoted))
		}
		got, err := redisServedBy(hostPort(port))
		clients++
		if err != nil {
			t.Fatalf("client %d during the failover failed: %v", clients, err)
		}
		switch got {
		case replicaPort:
			streak++
		case primaryPort:
			streak, lastOld = 0, time.Since(demoted)
		default:
			t.Fatalf("served by port %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("failover: the last client reached the old primary %s after its demotion; %d clients, none failed",
		lastOld.Round(time.Millisecond), clients)
	if lastOld > 5*time.Second {
		t.Errorf("clients moved %s after the failover, want within a few seconds", lastOld)
	}
}

// A banner check: an SMTP-like server greeting 220 is up, one greeting 554
// is down, and last_error says what was expected and what came.
func TestBannerProbe(t *testing.T) {
	ok := newBackend(t, "220 mail.example ESMTP ready")
	refusing := newBackend(t, "554 5.3.2 mail.example no service here")
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "smtp", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(refusing, ok), "health_checks": map[string]any{"interval": "200ms", "timeout": "300ms", "expect": "220"}}))
	tr := lookupTarget(t, "smtp", refusing.addr)
	waitFor(t, 10*time.Second, "the 554 server to be marked down", func() bool { return !tr.healthy.Load() })
	// The server then waits for a command: the probe waits its timeout.
	if want := `no "220" within 300ms, got "554 5.3.2 mail.example no service here\n"`; tr.status().LastError != want {
		t.Errorf("last_error %q, want %q", tr.status().LastError, want)
	}
	for i := 0; i < 10; i++ {
		if got := greeting(t, hostPort(port)); !strings.HasPrefix(got, "220 ") {
			t.Fatalf("client %d greeted %q", i, got)
		}
	}
	if st := lookupTarget(t, "smtp", ok.addr).status(); !st.Healthy || st.LastError != "" {
		t.Errorf("the 220 server: %+v", st)
	}
}

// send_hex / expect_hex: the probe writes bytes and waits for bytes.
func TestHexProbe(t *testing.T) {
	good := newProbeServer(t, "\xca\xfe\x00", true)
	bad := newProbeServer(t, "\xbe\xef\x00", true)
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "bin", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets":       []string{bad.addr, good.addr},
		"health_checks": map[string]any{"interval": "200ms", "timeout": "300ms", "send_hex": "00 01 0a", "expect_hex": "CAFE"}}))
	tb := lookupTarget(t, "bin", bad.addr)
	waitFor(t, 10*time.Second, "the target answering beef to be marked down", func() bool { return !tb.healthy.Load() })
	if want := `no "\xca\xfe" within 300ms, got "\xbe\xef\x00"`; tb.status().LastError != want {
		t.Errorf("last_error %q, want %q", tb.status().LastError, want)
	}
	for i := 0; i < 6; i++ {
		c := dial(t, hostPort(port))
		_, _ = c.Write([]byte{0, 1, '\n'})
		got := make([]byte, 3)
		_, err := io.ReadFull(c, got)
		c.Close()
		if err != nil || string(got) != "\xca\xfe\x00" {
			t.Fatalf("client %d got %q %v, want the target answering cafe", i, got, err)
		}
	}
}

// pairedPort returns a port free on both 127.0.0.2 and 127.0.0.3, with
// listeners on both.
func pairedPort(t *testing.T) (port int, a, b net.Listener) {
	t.Helper()
	for i := 0; i < 50; i++ {
		a, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		port := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.3", strconv.Itoa(port)))
		if err == nil {
			return port, a, b
		}
		a.Close()
	}
	t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3")
	return 0, nil, nil
}

// An HTTP probe on a separate port, as with Patroni: the targets are
// 127.0.0.2 and 127.0.0.3, each with a net/http server on the same
// health port whose /primary answers 200 on the primary and 503 on the
// other, and /role a body naming the role. Three apps probe them with
// expect_status as a code, as a class, and with expect_body; after the
// roles flip, each app's clients follow.
func TestHTTPProbeOnSeparatePort(t *testing.T) {
	a := newBackendOn(t, "a", "tcp", "127.0.0.2:0")
	b := newBackendOn(t, "b", "tcp", "127.0.0.3:0")
	healthPort, lnA, lnB := pairedPort(t)
	var primary atomic.Value // "127.0.0.2" or "127.0.0.3"
	primary.Store("127.0.0.2")
	var hostsMu sync.Mutex
	hosts := map[string]bool{} // Host headers seen by /primary
	serve := func(ln net.Listener) {
		ip := ln.Addr().(*net.TCPAddr).IP.String()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			isPrimary := primary.Load() == ip
			switch r.URL.Path {
			case "/primary":
				hostsMu.Lock()
				hosts[r.Host] = true
				hostsMu.Unlock()
				if !isPrimary {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			case "/role":
				role := "replica"
				if isPrimary {
					role = "primary"
				}
				fmt.Fprintf(w, `{"role": "%s", "timeline": 1}`, role)
			default:
				http.NotFound(w, r)
			}
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	serve(lnA)
	serve(lnB)

	ports := freePorts(t, 3)
	probe := func(extra map[string]any) map[string]any {
		hc := map[string]any{"interval": "100ms", "timeout": "500ms", "port": healthPort}
		for k, v := range extra {
			hc[k] = v
		}
		return hc
	}
	apps := []app{
		{"name": "code", "ports": ports[:1], "health_checks": probe(map[string]any{"uri": "/primary", "expect_status": 200,
			"headers": map[string][]string{"Host": {"db.internal"}}})},
		{"name": "class", "ports": ports[1:2], "health_checks": probe(map[string]any{"uri": "/primary", "method": "GET", "expect_status": "2xx"})},
		{"name": "body", "ports": ports[2:], "health_checks": probe(map[string]any{"uri": "/role", "expect_body": `"role":\s*"primary"`})},
	}
	for _, ap := range apps {
		ap["bind"], ap["targets"] = []string{"127.0.0.1"}, addrs(a, b)
	}
	loadConfig(t, proxyConfig(apps...))

	onlyTo := func(want string) {
		t.Helper()
		for _, ap := range apps {
			name := ap["name"].(string)
			in, out := map[string]*backend{"a": a, "b": b}[want], map[string]*backend{"a": b, "b": a}[want]
			waitFor(t, 10*time.Second, "app "+name+" to take "+out.name+" out and "+in.name+" in", func() bool {
				return !lookupTarget(t, name, out.addr).node.Eligible() && lookupTarget(t, name, in.addr).node.Eligible()
			})
			p := ap["ports"].([]int)[0]
			for i := 0; i < 4; i++ {
				if got := greeting(t, hostPort(p)); got != want {
					t.Fatalf("app %s: client %d went to %s, want the primary %s", name, i, got, want)
				}
			}
		}
	}
	onlyTo("a")
	if le := lookupTarget(t, "code", b.addr).status().LastError; le != "expected status 200, got 503" {
		t.Errorf("code app, standby's last_error %q", le)
	}
	if le := lookupTarget(t, "class", b.addr).status().LastError; le != "expected status 2xx, got 503" {
		t.Errorf("class app, standby's last_error %q", le)
	}
	if le := lookupTarget(t, "body", b.addr).status().LastError; le != `expected body to match "\"role\":\\s*\"primary\"", got "{\"role\": \"replica\", \"timeline\": 1}"` {
		t.Errorf("body app, standby's last_error %q", le)
	}

	primary.Store("127.0.0.3")
	flipped := time.Now()
	onlyTo("b")
	t.Logf("roles flipped: every app's clients moved within %s", time.Since(flipped).Round(time.Millisecond))
	hostsMu.Lock()
	defer hostsMu.Unlock()
	if !hosts["db.internal"] || !hosts["127.0.0.2"] || !hosts["127.0.0.3"] {
		t.Errorf("Host headers seen %v: want the configured db.internal and, by default, each target's host", hosts)
	}
}
