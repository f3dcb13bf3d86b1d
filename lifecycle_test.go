package tcpproxy

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// Tests of SPEC.md Part 2, "Connection lifecycle": the idle, half-close
// and maximum-duration timeouts, TCP keepalive, the access log and the
// closed-connection metrics.

// scriptedBackend is a test target that runs serve on each connection it
// accepts; the connections still open are closed when the test ends.
type scriptedBackend struct {
	addr   string
	mu     sync.Mutex
	conns  []net.Conn
	closed chan net.Conn // each connection once serve has returned and closed it
}

func newScriptedBackend(t *testing.T, serve func(c net.Conn)) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptedBackend{addr: ln.Addr().String(), closed: make(chan net.Conn, 64)}
	backendPorts.Store(ln.Addr().(*net.TCPAddr).Port, true)
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			go func() {
				serve(c)
				c.Close()
				select {
				case b.closed <- c:
				default:
				}
			}()
		}
	}()
	return b
}

// silentAfterEOF returns a backend script that reads what the client
// sends until its EOF, then holds the connection without a word until the
// test ends.
func silentAfterEOF(t *testing.T) func(net.Conn) {
	return func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
		<-t.Context().Done()
	}
}

// peerClosed waits up to d for the peer to close c and reports whether it
// did (EOF or an error, not a timeout).
func peerClosed(c net.Conn, d time.Duration) bool {
	closed, _ := closedWithin(c, d)
	return closed
}

func lifecycleApp(name string, port int, targets []string, fields map[string]any) app {
	a := app{"name": name, "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": targets,
		"health_checks": map[string]any{"disabled": true}}
	for k, v := range fields {
		a[k] = v
	}
	return a
}

func TestIdleTimeoutClosesIdleConnectionOnBothSidesAndSparesBusyOne(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		var backendSide = make(chan net.Conn, 2)
		b := newScriptedBackend(t, func(c net.Conn) {
			backendSide <- c
			_, _ = io.Copy(c, c) // echo until the proxy closes
		})
		port := freePort(t)
		loadConfig(t, proxyConfig(lifecycleApp("idle", port, []string{b.addr}, map[string]any{"idle_timeout": "400ms"})))

		idle := dial(t, hostPort(port))
		defer idle.Close()
		<-backendSide
		busy := dial(t, hostPort(port))
		defer busy.Close()
		<-backendSide

		// The busy connection sends a byte every 50 ms for 1.6 s, 4x the
		// timeout, and reads each back.
		start := time.Now()
		buf := make([]byte, 1)
		for time.Since(start) < 1600*time.Millisecond {
			if _, err := busy.Write([]byte{'x'}); err != nil {
				t.Fatalf("busy connection: write after %s: %v", time.Since(start), err)
			}
			if _, err := io.ReadFull(busy, buf); err != nil {
				t.Fatalf("busy connection: read after %s: %v", time.Since(start), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The idle one was closed on both sides meanwhile.
		if !peerClosed(idle, 5*time.Second) {
			t.Fatal("idle connection still open on the client side")
		}
		select {
		case <-b.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("idle connection still open on the target side")
		}
		if _, err := busy.Write([]byte{'y'}); err != nil {
			t.Fatalf("busy connection closed: %v", err)
		}
	})
}

func TestHalfCloseTimeoutClosesSilentHalfClosedConnectionAndSparesStreamingOne(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		silent := newScriptedBackend(t, silentAfterEOF(t))
		// streaming answers the client's EOF with a byte every 50 ms for
		// 1.2 s, then closes.
		streaming := newScriptedBackend(t, func(c net.Conn) {
			_, _ = io.Copy(io.Discard, c)
			for range 24 {
				if _, err := c.Write([]byte{'s'}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
		ports := freePorts(t, 2)
		fields := map[string]any{"half_close_timeout": "300ms"}
		loadConfig(t, proxyConfig(
			lifecycleApp("silent", ports[0], []string{silent.addr}, fields),
			lifecycleApp("streaming", ports[1], []string{streaming.addr}, fields),
		))

		c := dial(t, hostPort(ports[0]))
		defer c.Close()
		_ = c.(*net.TCPConn).CloseWrite()
		start := time.Now()
		if !peerClosed(c, 5*time.Second) {
			t.Fatal("half-closed connection with a silent target still open")
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("closed after %s, before the 300ms half_close_timeout", d)
		}

		s := dial(t, hostPort(ports[1]))
		defer s.Close()
		_ = s.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(s)
		if err != nil || len(got) != 24 {
			t.Fatalf("streaming reply after a half-close: got %d bytes (%v), want all 24", len(got), err)
		}
	})
}

func TestMaxConnectionDurationCutsBusyConnection(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "b")
		port := freePort(t)
		loadConfig(t, proxyConfig(lifecycleApp("capped", port, addrs(b), map[string]any{"max_connection_duration": "500ms"})))

		c := dial(t, hostPort(port))
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var err error
		for time.Since(start) < 10*time.Second {
			if _, err = c.Write([]byte("x")); err == nil {
				_, err = r.ReadByte()
			}
			if err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil {
			t.Fatal("busy connection still open after 10s with max_connection_duration 500ms")
		}
		if d := time.Since(start); d < 400*time.Millisecond || d > 5*time.Second {
			t.Errorf("cut after %s of traffic, want about 500ms", d)
		}
	})
}

func TestTimeoutsOffLeaveIdleAndHalfClosedConnectionsOpen(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		silent := newScriptedBackend(t, silentAfterEOF(t))
		ports := freePorts(t, 2)
		loadConfig(t, proxyConfig(
			lifecycleApp("short", ports[0], []string{silent.addr}, map[string]any{"idle_timeout": "200ms", "half_close_timeout": "200ms"}),
			lifecycleApp("off", ports[1], []string{silent.addr}, map[string]any{"idle_timeout": -1, "half_close_timeout": "off"}),
		))
		var conns [2]net.Conn
		for i, p := range ports {
			conns[i] = dial(t, hostPort(p))
			defer conns[i].Close()
			_ = conns[i].(*net.TCPConn).CloseWrite()
		}
		if !peerClosed(conns[0], 5*time.Second) {
			t.Fatal("the app with 200ms timeouts kept a silent half-closed connection")
		}
		// Ten times the other app's timeouts later, the one with timers off
		// is still open.
		if peerClosed(conns[1], 2*time.Second) {
			t.Fatal("the app with idle_timeout -1 and half_close_timeout off closed a connection")
		}
	})
}

// socketOf returns this process's socket whose local and peer addresses
// are the given ones, or -1.
func socketOf(t *testing.T, local, peer net.Addr) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		l, err1 := unix.Getsockname(fd)
		p, err2 := unix.Getpeername(fd)
		if err1 == nil && err2 == nil && sockaddrString(l) == local.String() && sockaddrString(p) == peer.String() {
			return fd
		}
	}
	return -1
}

func sockaddrString(sa unix.Sockaddr) string {
	if a, ok := sa.(*unix.SockaddrInet4); ok {
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return ""
}

// keepaliveOf reads a socket's keepalive settings: on, idle and interval
// in seconds, count.
func keepaliveOf(t *testing.T, fd int) [4]int {
	t.Helper()
	var out [4]int
	for i, o := range [][2]int{{unix.SOL_SOCKET, unix.SO_KEEPALIVE}, {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, {unix.IPPROTO_TCP, unix.TCP_KEEPCNT}} {
		v, err := unix.GetsockoptInt(fd, o[0], o[1])
		if err != nil {
			t.Fatalf("getsockopt on fd %d: %v", fd, err)
		}
		out[i] = v
	}
	return out
}

func TestKeepaliveIsSetOnClientAndTargetSocketsAndCanBeDisabled(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		accepted := make(chan net.Conn, 4)
		b := newScriptedBackend(t, func(c net.Conn) {
			accepted <- c
			_, _ = io.Copy(io.Discard, c)
		})
		ports := freePorts(t, 3)
		loadConfig(t, proxyConfig(
			lifecycleApp("ka-default", ports[0], []string{b.addr}, nil),
			lifecycleApp("ka-custom", ports[1], []string{b.addr}, map[string]any{"keepalive": map[string]any{"idle": "42s", "interval": "7s", "count": 3}}),
			lifecycleApp("ka-off", ports[2], []string{b.addr}, map[string]any{"keepalive": map[string]any{"disabled": true}}),
		))
		for i, want := range [][4]int{{1, 15, 15, 9}, {1, 42, 7, 3}} {
			client := dial(t, hostPort(ports[i]))
			defer client.Close()
			backendConn := <-accepted
			clientSide := socketOf(t, client.RemoteAddr(), client.LocalAddr())
			targetSide := socketOf(t, backendConn.RemoteAddr(), backendConn.LocalAddr())
			if clientSide < 0 || targetSide < 0 {
				t.Fatalf("proxy sockets not found (client side %d, target side %d)", clientSide, targetSide)
			}
			if got := keepaliveOf(t, clientSide); got != want {
				t.Errorf("app %d: client socket keepalive (on, idle, interval, count) = %v, want %v", i, got, want)
			}
			// Go's dialer sets keepalive once connect has returned, and the
			// backend may accept before that: give it a moment.
			var got [4]int
			deadline := time.Now().Add(5 * time.Second)
			for got = keepaliveOf(t, targetSide); got != want && time.Now().Before(deadline); got = keepaliveOf(t, targetSide) {
				time.Sleep(time.Millisecond)
			}
			if got != want {
				t.Errorf("app %d: target socket keepalive (on, idle, interval, count) = %v, want %v", i, got, want)
			}
		}
		client := dial(t, hostPort(ports[2]))
		defer client.Close()
		backendConn := <-accepted
		for side, fd := range map[string]int{
			"client": socketOf(t, client.RemoteAddr(), client.LocalAddr()),
			"target": socketOf(t, backendConn.RemoteAddr(), backendConn.LocalAddr()),
		} {
			if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || on != 0 {
				t.Errorf("keepalive disabled: %s socket has SO_KEEPALIVE %d (%v), want 0", side, on, err)
			}
		}
	})
}

// withAccessLogFile is the extra config of tryLoadWith that writes the
// access logs of every app to path as JSON lines, and nothing else there.
func withAccessLogFile(path string) map[string]any {
	return map[string]any{"logging": map[string]any{"logs": map[string]any{
		"default": map[string]any{"level": "ERROR", "exclude": []string{"tcpproxy.access"}},
		"access": map[string]any{
			"level":   "INFO",
			"include": []string{"tcpproxy.access"},
			"writer":  map[string]any{"output": "file", "filename": path},
			"encoder": map[string]any{"format": "json"},
		},
	}}}
}

// accessEntries returns the access log entries of path by the client's
// port.
func accessEntries(t *testing.T, path string) map[int]map[string]any {
	t.Helper()
	out := map[int]map[string]any{}
	for _, e := range logEntries(t, path, "connection closed") {
		port, _ := e["remote_port"].(float64)
		if _, dup := out[int(port)]; dup {
			t.Errorf("two access log entries for client port %d", int(port))
		}
		out[int(port)] = e
	}
	return out
}

var accessLogFields = []string{"app", "remote_ip", "remote_port", "local_port", "target", "attempts",
	"connect_duration", "duration", "bytes_received", "bytes_sent", "reason"}

func TestAccessLogHasOneEntryPerConnectionWithBytesAndReason(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		echoB := newBackend(t, "echo") // greets with "echo\n", then echoes
		silent := newScriptedBackend(t, silentAfterEOF(t))
		resetting := newScriptedBackend(t, func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1))
			_ = c.(*net.TCPConn).SetLinger(0)
		})
		dead := newBackend(t, "dead")
		dead.stop()
		ports := freePorts(t, 7)
		on := map[string]any{"access_log": true, "idle_timeout": "300ms", "half_close_timeout": "300ms"}
		logFile := filepath.Join(t.TempDir(), "access.log")
		if err := tryLoadWith(proxyConfig(
			lifecycleApp("acc", ports[0], addrs(echoB), on),
			lifecycleApp("acc-silent", ports[1], []string{silent.addr}, on),
			lifecycleApp("acc-reset", ports[2], []string{resetting.addr}, on),
			lifecycleApp("acc-dead", ports[3], []string{dead.addr}, on),
			lifecycleApp("acc-max", ports[4], addrs(echoB), map[string]any{"access_log": true, "max_connections": 1}),
			lifecycleApp("quiet", ports[5], addrs(echoB), nil),
			// A wildcard bind: the port comes from the listening socket.
			lifecycleApp("acc-any", ports[6], addrs(echoB), map[string]any{"access_log": true, "bind": []string{"0.0.0.0"}}),
		), withAccessLogFile(logFile)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = caddy.Stop() })

		want := map[int]map[string]any{} // by client port: the fields to check
		expect := func(c net.Conn, fields map[string]any) {
			want[c.LocalAddr().(*net.TCPAddr).Port] = fields
		}

		// normal: 5 bytes echoed, after the 5-byte greeting.
		c := dial(t, hostPort(ports[0]))
		echoOn(t, c, "hello")
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.ReadAll(c)
		c.Close()
		expect(c, map[string]any{"app": "acc", "reason": "normal", "target": echoB.addr, "attempts": 1.0,
			"bytes_received": 5.0, "bytes_sent": 10.0, "local_port": float64(ports[0]), "remote_ip": "127.0.0.1"})

		// idle_timeout: the greeting, then nothing.
		c = dial(t, hostPort(ports[0]))
		if !peerClosed(c, 5*time.Second) {
			t.Fatal("idle connection not closed")
		}
		c.Close()
		expect(c, map[string]any{"reason": "idle_timeout", "bytes_received": 0.0, "bytes_sent": 5.0})

		// half_close_timeout: 3 bytes, EOF, and a silent target.
		c = dial(t, hostPort(ports[1]))
		_, _ = c.Write([]byte("abc"))
		_ = c.(*net.TCPConn).CloseWrite()
		if !peerClosed(c, 5*time.Second) {
			t.Fatal("half-closed connection not closed")
		}
		c.Close()
		expect(c, map[string]any{"app": "acc-silent", "reason": "half_close_timeout", "bytes_received": 3.0, "bytes_sent": 0.0})

		// client_error: the client resets after the greeting.
		c = dial(t, hostPort(ports[0]))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
		expect(c, map[string]any{"reason": "client_error", "bytes_sent": 5.0})

		// target_error: the target resets after the client's first byte.
		c = dial(t, hostPort(ports[2]))
		_, _ = c.Write([]byte("x"))
		if !peerClosed(c, 5*time.Second) {
			t.Fatal("connection to a resetting target not closed")
		}
		c.Close()
		expect(c, map[string]any{"app": "acc-reset", "reason": "target_error", "bytes_received": 1.0})

		// dial_failed, then no_healthy_target: both WARN, with no target.
		for _, reason := range []string{"dial_failed", "no_healthy_target"} {
			c = dial(t, hostPort(ports[3]))
			if !peerClosed(c, 5*time.Second) {
				t.Fatalf("%s: connection not closed", reason)
			}
			c.Close()
			attempts := 1.0
			if reason == "no_healthy_target" {
				attempts = 0
			}
			expect(c, map[string]any{"app": "acc-dead", "reason": reason, "level": "warn", "target": "", "attempts": attempts})
		}

		// max_connections: INFO, no dial.
		held := dial(t, hostPort(ports[4]))
		if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		c = dial(t, hostPort(ports[4]))
		if !peerClosed(c, 5*time.Second) {
			t.Fatal("connection beyond max_connections not closed")
		}
		c.Close()
		expect(c, map[string]any{"app": "acc-max", "reason": "max_connections", "level": "info", "attempts": 0.0})

		// A wildcard bind reports the port the client connected to.
		c = dial(t, hostPort(ports[6]))
		echoOn(t, c, "w")
		c.Close()
		expect(c, map[string]any{"app": "acc-any", "local_port": float64(ports[6]), "remote_ip": "127.0.0.1"})

		// No access log, no entry.
		quiet := dial(t, hostPort(ports[5]))
		echoOn(t, quiet, "q")
		quiet.Close()

		waitFor(t, 10*time.Second, "an access log entry for every connection", func() bool {
			return len(accessEntries(t, logFile)) >= len(want)
		})
		got := accessEntries(t, logFile)
		for port, fields := range want {
			e, ok := got[port]
			if !ok {
				t.Errorf("no access log entry for client port %d (want %v)", port, fields)
				continue
			}
			for _, f := range accessLogFields {
				if _, ok := e[f]; !ok {
					t.Errorf("entry %v lacks field %q", e, f)
				}
			}
			if !strings.HasPrefix(e["logger"].(string), "tcpproxy.access.") || e["logger"] != "tcpproxy.access."+e["app"].(string) {
				t.Errorf("entry %v: logger %v, want tcpproxy.access.<app>", e, e["logger"])
			}
			if _, ok := fields["level"]; !ok {
				fields["level"] = "info"
			}
			for k, v := range fields {
				if e[k] != v {
					t.Errorf("client port %d: %s = %v, want %v (entry %v)", port, k, e[k], v, e)
				}
			}
		}
		for _, e := range got {
			if e["app"] == "quiet" {
				t.Errorf("app without access_log wrote %v", e)
			}
		}
		if len(got) != len(want)+1 { // + the held max_connections connection, still open
			t.Logf("entries: %v", got)
		}
	})
}

func TestClosedConnectionMetricsCountReasonsAndDurations(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		b := newBackend(t, "b")
		port := freePort(t)
		admin := loadConfigWithAdmin(t, proxyConfig(lifecycleApp("closes", port, addrs(b), map[string]any{"idle_timeout": "200ms"})))
		echo(t, hostPort(port), "x") // normal: the client closes after the echo
		c := dial(t, hostPort(port))
		if !peerClosed(c, 5*time.Second) {
			t.Fatal("idle connection not closed")
		}
		c.Close()
		waitForValue(t, admin, 1, "caddy_tcpproxy_closed_connections_total", "app", "closes", "reason", "idle_timeout")
		waitForValue(t, admin, 1, "caddy_tcpproxy_closed_connections_total", "app", "closes", "reason", "normal")
		waitForValue(t, admin, 2, "caddy_tcpproxy_connection_duration_seconds", "app", "closes")
	})
}

func TestLifecycleBadValuesAreRejectedInEveryFormat(t *testing.T) {
	testBadValues(t, []badValue{
		{`"idle_timeout": "soon"`, "\t\t\tidle_timeout soon\n", []string{"idle_timeout", "soon"}},
		{`"idle_timeout": true`, "\t\t\tidle_timeout\n", []string{"idle_timeout"}},
		{`"half_close_timeout": "1 minute"`, "\t\t\thalf_close_timeout 1 minute\n", []string{"half_close_timeout"}},
		{`"max_connection_duration": "-1s"`, "\t\t\tmax_connection_duration -1s\n", []string{"max_connection_duration", "must be positive"}},
		{`"max_connection_duration": "off"`, "\t\t\tmax_connection_duration off\n", []string{"max_connection_duration"}},
		{`"keepalive": "yes"`, "\t\t\tkeepalive yes\n", []string{"keepalive", "yes"}},
		{`"keepalive": {"idel": "10s"}`, "\t\t\tkeepalive 10s 10s 9 extra\n", []string{"keepalive"}},
		{`"keepalive": {"idle": "500ms"}`, "\t\t\tkeepalive 500ms\n", []string{"keepalive.idle", "500ms"}},
		{`"keepalive": {"interval": "10h"}`, "\t\t\tkeepalive 10s 10h\n", []string{"keepalive.interval", "10h"}},
		{`"keepalive": {"count": 200}`, "\t\t\tkeepalive 10s 10s 200\n", []string{"keepalive.count", "200"}},
		{`"keepalive": {"count": "many"}`, "\t\t\tkeepalive 10s 10s many\n", []string{"count", "many"}},
		{`"keepalive": {"disabled": true, "idle": "10s"}`, "", []string{"keepalive", "disabled"}},
		{`"access_log": "yes"`, "\t\t\taccess_log yes\n", []string{"access_log", "yes"}},
	})
}

func TestLifecycleSettingsAdaptAlikeInEveryFormat(t *testing.T) {
	fields := `"idle_timeout": "off", "half_close_timeout": "30s", "max_connection_duration": "24h",
		"keepalive": {"idle": "30s", "interval": "10s", "count": 5}, "access_log": true`
	lines := "\t\t\tidle_timeout off\n\t\t\thalf_close_timeout 30s\n\t\t\tmax_connection_duration 24h\n" +
		"\t\t\tkeepalive 30s 10s 5\n\t\t\taccess_log\n"
	sameInEveryFormat(t, fields, lines)
	// A negative JSON duration is the same as "off".
	neg, err := decodeConfig(formatNative, webApp(t, `"idle_timeout": "-1s"`))
	if err != nil {
		t.Fatal(err)
	}
	if got := neg.Apps[0].timeouts().Idle; got != 0 {
		t.Errorf("idle_timeout -1s: relay idle timeout %s, want 0 (off)", got)
	}
	if d := (Lifecycle{}).withDefaults(); time.Duration(d.IdleTimeout) != time.Hour || time.Duration(d.HalfCloseTimeout) != time.Minute ||
		*d.Keepalive != (Keepalive{Idle: Duration(15 * time.Second), Interval: Duration(15 * time.Second), Count: 9}) {
		t.Errorf("defaults %+v, keepalive %+v", d, *d.Keepalive)
	}
}

// benchmarkAccessLog measures writing one connection's access log entry:
// what the log costs per connection, on (a JSON encoder writing to
// io.Discard) and off.
func benchmarkAccessLog(b *testing.B, on bool) {
	_, server := tcpPair(b)
	cx := layer4.WrapConnection(server, nil, zap.NewNop())
	h := &Handler{App: "bench"}
	if on {
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		h.access = zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel)).Named("tcpproxy.access.bench")
	}
	tg := &target{addr: "10.0.0.1:5432"}
	s := session{cx: cx, client: addrPort(server.RemoteAddr()), accepted: time.Now(), attempts: 1, target: tg,
		dialStart: time.Now(), connected: time.Now(), bytesUp: 5120, bytesDown: 81920}
	b.ReportAllocs()
	for range b.N {
		h.logClosed(&s)
	}
}

func BenchmarkAccessLogOff(b *testing.B) { benchmarkAccessLog(b, false) }
func BenchmarkAccessLogOn(b *testing.B)  { benchmarkAccessLog(b, true) }
