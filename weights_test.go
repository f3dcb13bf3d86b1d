package tcpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of SPEC.md Part 2, "Targets: weights, backups, stickiness" and
// "Runtime target state".

// greetingFrom connects to addr from the local IP src (any when empty)
// and returns the name of the backend that answered.
func greetingFrom(t testing.TB, src, addr string) string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("greeting through %s from %s: %v", addr, src, err)
	}
	return strings.TrimSpace(name)
}

// weighted is a target object of the JSON config.
func weighted(addr string, weight int, backup bool) map[string]any {
	m := map[string]any{"address": addr, "weight": weight}
	if backup {
		m["backup"] = true
	}
	return m
}

func TestWeightedRoundRobinGivesEachTargetItsWeightInEveryWindowAcrossPorts(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	ports := freePorts(t, 3)
	loadConfig(t, proxyConfig(app{"name": "swrr", "ports": ports, "bind": []string{"127.0.0.1"},
		"targets": []any{weighted(a.addr, 3, false), b.addr, weighted(c.addr, 2, false)}}))
	want := map[string]int{"a": 3, "b": 1, "c": 2}
	const windows = 5
	var seq []string
	for i := range windows * 6 {
		seq = append(seq, greeting(t, hostPort(ports[i%len(ports)])))
	}
	for start := 0; start+6 <= len(seq); start++ {
		counts := map[string]int{}
		for _, name := range seq[start : start+6] {
			counts[name]++
		}
		for name, w := range want {
			if counts[name] != w {
				t.Fatalf("window %d..%d of %v: %s got %d, want its weight %d", start, start+5, seq, name, counts[name], w)
			}
		}
	}
}

func TestWeightedLeastConnKeepsActiveConnectionsProportionalToWeight(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a, b := newBackend(t, "a"), newBackend(t, "b")
		port := freePort(t)
		loadConfig(t, proxyConfig(app{"name": "wlc", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"lb_policy": "least_conn", "targets": []any{a.addr, weighted(b.addr, 3, false)}}))
		counts := map[string]int{}
		for range 8 {
			c := dial(t, hostPort(port))
			defer c.Close()
			name, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			counts[strings.TrimSpace(name)]++
		}
		if counts["a"] != 2 || counts["b"] != 6 {
			t.Errorf("8 held connections: %v, want a 2 and b 6 (active/weight kept equal)", counts)
		}
	})
}

func TestBackupsTakeOverWithoutFailuresAndGiveWayToAReturningPrimary(t *testing.T) {
	p1, p2 := newBackend(t, "p1"), newBackend(t, "p2")
	b1, b2 := newBackend(t, "b1"), newBackend(t, "b2")
	port := freePort(t)
	loadConfig(t, proxyConfig(app{"name": "failover", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets":       []any{p1.addr, p2.addr, weighted(b1.addr, 1, true), weighted(b2.addr, 1, true)},
		"health_checks": map[string]any{"interval": "100ms", "timeout": "500ms"}}))
	addr := hostPort(port)
	for range 4 {
		if name := greeting(t, addr); name != "p1" && name != "p2" {
			t.Fatalf("with the primaries up, %s answered", name)
		}
	}
	p1.stop()
	p2.stop()
	// Every connection is served from the first one on: passive failover
	// skips a dead primary that the probes have not marked down yet.
	counts := map[string]int{}
	for range 8 {
		counts[echo(t, addr, "x")]++
	}
	if counts["b1"] == 0 || counts["b2"] == 0 || counts["b1"]+counts["b2"] != 8 {
		t.Fatalf("with the primaries dead, 8 connections went to %v, want both backups only", counts)
	}
	onBackup := dial(t, addr)
	defer onBackup.Close()
	echoOn(t, onBackup, "before")

	p1.restart()
	waitFor(t, 10*time.Second, "p1 marked up", func() bool { return lookupTarget(t, "failover", p1.addr).healthy.Load() })
	for range 4 {
		if name := greeting(t, addr); name != "p1" {
			t.Fatalf("with p1 back, %s answered", name)
		}
	}
	// The connection already on a backup runs on.
	if _, err := io.WriteString(onBackup, "after"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(onBackup, buf); err != nil || string(buf) != "after" {
		t.Fatalf("connection on a backup after the primary returned: %q, %v", buf, err)
	}
}

// ipHashAssignment returns which backend each of n client IPs
// (127.0.0.2, ...) reaches.
func ipHashAssignment(t *testing.T, addr string, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := range n {
		src := fmt.Sprintf("127.0.%d.%d", i/200, 2+i%200)
		out[src] = greetingFrom(t, src, addr)
	}
	return out
}

func TestIPHashKeepsClientsAndMovesOnlyTheDepartedTargetsClients(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	port := freePort(t)
	cfg := func(targets []string) map[string]any {
		return proxyConfig(app{"name": "sticky", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"lb_policy": "ip_hash", "targets": targets,
			"health_checks": map[string]any{"interval": "100ms", "timeout": "500ms"}})
	}
	loadConfig(t, cfg(addrs(a, b, c)))
	addr := hostPort(port)
	const clients = 60
	before := ipHashAssignment(t, addr, clients)
	shares := map[string]int{}
	for _, name := range before {
		shares[name]++
	}
	if len(shares) != 3 {
		t.Fatalf("%d clients went to %v, want all three targets used", clients, shares)
	}
	// Stickiness: each client again reaches the same target.
	if again := ipHashAssignment(t, addr, clients); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Fatalf("assignment changed with nothing changing:\n%v\n%v", before, again)
	}

	b.stop()
	waitFor(t, 10*time.Second, "b marked down", func() bool { return !lookupTarget(t, "sticky", b.addr).healthy.Load() })
	during := ipHashAssignment(t, addr, clients)
	for src, name := range before {
		switch {
		case name == "b" && during[src] == "b":
			t.Errorf("client %s still reached the down target", src)
		case name != "b" && during[src] != name:
			t.Errorf("client %s moved from %s to %s although its target stayed", src, name, during[src])
		}
	}
	b.restart()
	waitFor(t, 10*time.Second, "b marked up", func() bool { return lookupTarget(t, "sticky", b.addr).healthy.Load() })
	if after := ipHashAssignment(t, addr, clients); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after b returned the assignment differs:\n%v\n%v", before, after)
	}
	// A reload with the targets listed in another order agrees.
	if err := tryLoad(cfg(addrs(c, a, b))); err != nil {
		t.Fatal(err)
	}
	if reloaded := ipHashAssignment(t, addr, clients); fmt.Sprint(reloaded) != fmt.Sprint(before) {
		t.Errorf("after a reload the assignment differs:\n%v\n%v", before, reloaded)
	}
}

// setTargetState posts a runtime state change and returns the status code
// and body.
func setTargetState(t testing.TB, adminAddr, body string) (int, string) {
	t.Helper()
	// Right after a reload Caddy replaces its admin server, which resets
	// a connection now and then (see adminRequest): those are retried,
	// on a new connection; setting a state twice is harmless.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Post("http://"+adminAddr+"/tcpproxy/targets", "application/json", strings.NewReader(body))
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				return resp.StatusCode, string(b)
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /tcpproxy/targets: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustSetState(t testing.TB, adminAddr, app, target, state string, close bool) {
	t.Helper()
	code, body := setTargetState(t, adminAddr, fmt.Sprintf(`{"app":%q,"target":%q,"state":%q,"close":%v}`, app, target, state, close))
	if code != http.StatusOK || !strings.Contains(body, `"state":"`+state+`"`) {
		t.Fatalf("setting %s to %s: %d %s", target, state, code, body)
	}
}

func TestDrainKeepsAStreamFlowingAndSendsNewConnectionsElsewhere(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a, b := newBackend(t, "a"), newBackend(t, "b")
		port := freePort(t)
		cfg := proxyConfig(app{"name": "drain", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(a, b)})
		admin := loadConfigWithAdmin(t, cfg)
		addr := hostPort(port)
		var stream net.Conn
		for stream == nil {
			c := dial(t, addr)
			r := bufio.NewReader(c)
			if name, _ := r.ReadString('\n'); name == "a\n" {
				stream = c
			} else {
				c.Close()
			}
		}
		defer stream.Close()
		mustSetState(t, admin, "drain", a.addr, "drain", false)
		for range 6 {
			if name := greeting(t, addr); name != "b" {
				t.Fatalf("a drained, yet %s answered a new connection", name)
			}
		}
		for i := range 20 {
			msg := fmt.Sprintf("m%02d", i)
			if _, err := io.WriteString(stream, msg); err != nil {
				t.Fatalf("stream to the drained target: %v", err)
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(stream, buf); err != nil || string(buf) != msg {
				t.Fatalf("stream to the drained target: %q, %v", buf, err)
			}
		}
		st := getStatus(t, admin)
		if tg := st.Apps[0].Targets[0]; tg.State != "drain" || tg.ActiveConnections != 1 {
			t.Errorf("status of the drained target: state %q, %d active; want drain, 1", tg.State, tg.ActiveConnections)
		}

		// The state survives a reload that keeps the target.
		cfg["grace_period"] = "5s"
		if err := tryLoadWith(cfg, withAdmin(admin)); err != nil {
			t.Fatal(err)
		}
		if got := getStatus(t, admin).Apps[0].Targets[0].State; got != "drain" {
			t.Errorf("after a reload the drained target is %q", got)
		}
		mustSetState(t, admin, "drain", a.addr, "ready", false)
		seen := map[string]bool{}
		for range 4 {
			seen[greeting(t, addr)] = true
		}
		if !seen["a"] {
			t.Errorf("a ready again, but 4 connections went to %v", seen)
		}
	})
}

func TestMaintStopsProbesAndCloseCutsItsConnections(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		a, b := newBackend(t, "a"), newBackend(t, "b")
		port := freePort(t)
		admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "maint", "ports": []int{port}, "bind": []string{"127.0.0.1"},
			"targets": addrs(a, b), "health_checks": map[string]any{"interval": "50ms", "timeout": "500ms"}}))
		addr := hostPort(port)
		ta := lookupTarget(t, "maint", a.addr)
		var onA []net.Conn
		for len(onA) < 2 {
			c := dial(t, addr)
			defer c.Close()
			if name, _ := bufio.NewReader(c).ReadString('\n'); name == "a\n" {
				onA = append(onA, c)
			}
		}
		mustSetState(t, admin, "maint", a.addr, "maint", false)
		time.Sleep(100 * time.Millisecond) // a probe in flight at the switch may still finish
		last := ta.status().LastCheck
		time.Sleep(300 * time.Millisecond) // six probe intervals: no probe may happen
		if got := ta.status().LastCheck; !got.Equal(last) {
			t.Errorf("target in maintenance probed at %v (last before %v)", got, last)
		}
		if _, err := io.WriteString(onA[0], "still"); err != nil {
			t.Fatalf("maint without close cut a connection: %v", err)
		}
		mustSetState(t, admin, "maint", a.addr, "maint", true)
		for i, c := range onA {
			if !peerClosed(c, 5*time.Second) {
				t.Errorf("connection %d to the target in maintenance not closed by close:true", i)
			}
		}
		waitForValue(t, admin, 2, "caddy_tcpproxy_closed_connections_total", "app", "maint", "reason", "admin")
		for range 4 {
			if name := greeting(t, addr); name != "b" {
				t.Fatalf("a in maintenance, yet %s answered", name)
			}
		}
	})
}

func TestTargetStateAdminErrors(t *testing.T) {
	a := newBackend(t, "a")
	port := freePort(t)
	admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "errs", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(a)}))
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{`{"app":"nope","target":"` + a.addr + `","state":"drain"}`, 404, `unknown app \"nope\"`},
		{`{"app":"errs","target":"10.9.9.9:1","state":"drain"}`, 404, `has no target \"10.9.9.9:1\"`},
		{`{"app":"errs","target":"` + a.addr + `","state":"sleep"}`, 400, `unknown state \"sleep\"`},
		{`{"app":"errs","target":"` + a.addr + `"}`, 400, `unknown state \"\"`},
		{`{"target":"` + a.addr + `","state":"drain"}`, 400, `\"app\" is required`},
		{`{"app":"errs","state":"drain"}`, 400, `\"target\" is required`},
		{`{"app":"errs","target":"` + a.addr + `","state":"drain","close":true}`, 400, `\"close\" applies to state \"maint\" only`},
		{`{"app":"errs","target":"` + a.addr + `","state":"drain","extra":1}`, 400, `unknown field \"extra\"`},
		{`{"app":"errs",`, 400, `want a JSON body`},
		{`[1,2]`, 400, `want a JSON body`},
		{`{"app":"errs","target":"` + a.addr + `","state":"drain"} {}`, 400, `got more after it`},
		{strings.Repeat(" ", 70<<10), 400, "body larger than"},
	} {
		code, body := setTargetState(t, admin, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %.60q: %d %s; want %d with an error mentioning %s", tc.body, code, body, tc.code, tc.want)
		}
	}
	resp, body := adminRequest(t, "GET", admin, "/tcpproxy/targets", "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /tcpproxy/targets: %s (Allow %q) %s; want 405 with Allow: POST", resp.Status, resp.Header.Get("Allow"), body)
	}
	if got := lookupTarget(t, "errs", a.addr).status().State; got != "ready" {
		t.Errorf("after only bad requests the target is %q", got)
	}
}

func TestTargetObjectsAdaptAlikeAndBadOnesAreRejectedInEveryFormat(t *testing.T) {
	fields := `"targets": ["10.0.0.1:80", {"address": "10.0.0.2:80", "weight": 3}, {"address": "10.0.0.3:80", "backup": true}]`
	lines := "\t\t\ttarget 10.0.0.2:80 weight 3\n\t\t\ttarget 10.0.0.3:80 backup\n"
	native, err := decodeConfig(formatNative, webApp(t, `"targets": ["127.0.0.1:9001", {"address": "10.0.0.2:80", "weight": 3}, {"address": "10.0.0.3:80", "backup": true}]`))
	if err != nil {
		t.Fatal(err)
	}
	caddyfile, err := decodeConfig(formatCaddyfile, webBlock(lines))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := appJSON(t, native), appJSON(t, caddyfile); a != b {
		t.Fatalf("formats differ:\nnative    %s\nCaddyfile %s", a, b)
	}
	if _, err := decodeConfig(formatPlain, webApp(t, fields)); err != nil {
		t.Fatal(err)
	}
	testBadValues(t, []badValue{
		{`"targets": [{"address": "10.0.0.1:80", "weight": 0}]`, "\t\t\ttarget 10.0.0.2:80 weight 0\n", []string{"target", "weight 0 is out of range"}},
		{`"targets": [{"address": "10.0.0.1:80", "weight": 300}]`, "\t\t\ttarget 10.0.0.2:80 weight 300\n", []string{"targets", "weight 300 is out of range"}},
		{`"targets": [{"address": "10.0.0.1:80", "weight": "x"}]`, "\t\t\ttarget 10.0.0.2:80 weight x\n", []string{"weight", "x"}},
		{`"targets": [{"adress": "10.0.0.1:80"}]`, "\t\t\ttarget 10.0.0.2:80 heavy\n", []string{"target"}},
		{`"targets": [{"address": "10.0.0.1"}]`, "\t\t\ttarget 10.0.0.1\n", []string{"targets", "10.0.0.1", "missing port"}},
		{`"targets": ["10.0.0.1:80", {"address": "10.0.0.1:80", "weight": 2}]`, "\t\t\ttarget 127.0.0.1:9001 weight 2\n", []string{"targets", "listed twice"}},
		{`"targets": [{"address": "10.0.0.1:80", "backup": "yes"}]`, "\t\t\ttarget 10.0.0.2:80 backup backup\n", []string{"backup"}},
		{`"lb_policy": "hash"`, "\t\t\tlb_policy hash\n", []string{"lb_policy", `"hash"`, `"ip_hash"`}},
	})
}

func TestStatusRowsShowWeightBackupAndState(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "rows", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": []any{weighted(a.addr, 5, false), weighted(b.addr, 1, true)}}))
	mustSetState(t, admin, "rows", b.addr, "drain", false)
	st := getStatus(t, admin)
	ta, tb := st.Apps[0].Targets[0], st.Apps[0].Targets[1]
	if ta.Weight != 5 || ta.Backup || ta.State != "ready" || tb.Weight != 1 || !tb.Backup || tb.State != "drain" {
		t.Errorf("status rows %+v / %+v; want weight 5 ready, and weight 1 backup drain", ta, tb)
	}
}
