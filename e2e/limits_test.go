package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMaxConnectionsClosesTheExtraConnection: behaviour 4. With
// max_connections 3, three connections stay usable, a fourth is closed by
// the proxy within a second, and once one of the three closes a new one
// is accepted.
func TestMaxConnectionsClosesTheExtraConnection(t *testing.T) {
	const max = 3
	be := newEchoBackend(t, "M")
	port := freePort(t)
	cfg := proxyCfg{Apps: []appCfg{app("limited", []int{port}, be.addr)}}
	cfg.Apps[0].MaxConnections = max
	startCaddy(t, cfg)

	type open struct {
		conn net.Conn
		r    *bufio.Reader
	}
	var conns []open
	defer func() {
		for _, c := range conns {
			c.conn.Close()
		}
	}()
	for i := 0; i < max; i++ {
		conn, err := dialProxy(port)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(conn)
		conns = append(conns, open{conn, r})
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := greeting(r); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, max, err)
		}
		if err := echoOnce(conn, r, []byte(fmt.Sprintf("conn-%d", i))); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, max, err)
		}
	}

	// The extra one: accepted by the kernel, then closed by the proxy.
	extra, err := dialProxy(port)
	if err != nil {
		t.Fatalf("connection %d: %v", max+1, err)
	}
	start := time.Now()
	_ = extra.SetReadDeadline(start.Add(time.Second))
	n, err := extra.Read(make([]byte, 64))
	closedAfter := time.Since(start)
	extra.Close()
	if kind := classify(err); n != 0 || (kind != kindCut && kind != kindReset) {
		t.Fatalf("connection %d: read %d bytes, %v: want it closed within 1s", max+1, n, err)
	}
	t.Logf("connection %d closed by the proxy after %s (%v)", max+1, closedAfter.Round(time.Microsecond), err)

	for i, c := range conns {
		if err := echoOnce(c.conn, c.r, []byte(fmt.Sprintf("still-%d", i))); err != nil {
			t.Errorf("connection %d after the rejection: %v", i+1, err)
		}
	}

	// Close one: a new connection is accepted (once the proxy has seen
	// the close, so retry a bounded number of times).
	conns[0].conn.Close()
	conns = conns[1:]
	attempts := 0
	accepted := waitFor(10*time.Second, func() bool {
		attempts++
		name, cerr := exchange(port, []byte("replacement"))
		return cerr == nil && name == "M"
	})
	if !accepted {
		t.Fatalf("no new connection accepted after closing one of the %d (%d attempts)", max, attempts)
	}
	t.Logf("after closing one, a new connection was accepted on attempt %d", attempts)
}

// TestReloadKeepsTargetHealthState: behaviour 5. A target that is down
// stays down across a reload that keeps it: its state (consecutive
// successes toward rise) is not rebuilt from scratch, so it neither starts
// healthy again nor flaps up on the new config's first probe.
func TestReloadKeepsTargetHealthState(t *testing.T) {
	a := newEchoBackend(t, "A")
	b := newEchoBackend(t, "B")
	a.stop() // down from the start: the first probe round marks it down
	port := freePort(t)
	// An hourly down_interval too: a down target is otherwise probed
	// every 5s, and this test is about the state a reload keeps.
	hc := &healthCfg{Interval: "1h", DownInterval: "1h", Timeout: "1s", Rise: 3, Fall: 1}
	cfg := proxyCfg{Apps: []appCfg{app("health", []int{port}, a.addr, b.addr)}}
	cfg.Apps[0].HealthChecks = hc
	proc := startCaddy(t, cfg)
	if !waitFor(10*time.Second, func() bool { return proc.logContains(`"target down"`, a.addr) }) {
		t.Fatal(`no "target down" log line for A`)
	}
	// A comes back: only `rise` (3) successful probes may mark it up, and
	// with an hourly interval the new config's first round is one.
	a.restart()

	for i, changed := range []func(*appCfg){
		func(c *appCfg) { c.DialTimeout = "3s" },
		func(c *appCfg) { c.Ports = append(c.Ports, freePort(t)) },
	} {
		next := proxyCfg{Apps: []appCfg{app("health", []int{port}, a.addr, b.addr)}}
		next.Apps[0].HealthChecks = hc
		changed(&next.Apps[0])
		if err := proc.load(next); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		before := a.data.Load()
		got := map[string]int{}
		for k := 0; k < 20; k++ {
			name, cerr := exchange(port, []byte("where-to"))
			if cerr != nil {
				t.Fatalf("reload %d, connection %d: %v", i+1, k, cerr)
			}
			got[name]++
		}
		if got["A"] != 0 || a.data.Load() != before {
			t.Errorf("after reload %d the down target A got connections: %v", i+1, got)
		}
		if st, ok := targetStatus(t, proc, "health", a.addr); ok && st.Healthy {
			t.Errorf("after reload %d /tcpproxy/status shows A healthy: %+v", i+1, st)
		}
	}
	if n := strings.Count(readLog(t, proc), `"target up"`); n != 0 {
		t.Errorf("%d \"target up\" log lines: A flapped up", n)
	}
	if _, ok := targetStatus(t, proc, "health", a.addr); !ok {
		t.Log("GET /tcpproxy/status not available: checked through routing and logs only")
	}
}

func readLog(t *testing.T, proc *caddyProc) string {
	t.Helper()
	b, err := os.ReadFile(proc.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type statusTarget struct {
	Address   string `json:"address"`
	Healthy   bool   `json:"healthy"`
	LastError string `json:"last_error"`
}

// targetStatus reads a target's row from GET /tcpproxy/status; ok is false
// when the endpoint does not exist (yet).
func targetStatus(t *testing.T, proc *caddyProc, appName, target string) (statusTarget, bool) {
	t.Helper()
	code, body, err := proc.get("/tcpproxy/status")
	if err != nil || code == http.StatusNotFound {
		return statusTarget{}, false
	}
	if code != http.StatusOK {
		t.Errorf("GET /tcpproxy/status: %d %s", code, body)
		return statusTarget{}, false
	}
	var st struct {
		Apps []struct {
			Name    string         `json:"name"`
			Targets []statusTarget `json:"targets"`
		} `json:"apps"`
	}
	if err := json.NewDecoder(strings.NewReader(body)).Decode(&st); err != nil && err != io.EOF {
		t.Errorf("GET /tcpproxy/status: %v: %s", err, body)
		return statusTarget{}, false
	}
	for _, a := range st.Apps {
		if a.Name != appName {
			continue
		}
		for _, tg := range a.Targets {
			if tg.Address == target {
				return tg, true
			}
		}
	}
	t.Errorf("GET /tcpproxy/status has no target %s in app %s: %s", target, appName, body)
	return statusTarget{}, false
}
