package tcpproxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Tests of SPEC.md behaviour 10: the admin API's GET /tcpproxy/status and
// the HTML page beside it.

// statusDoc is the status JSON as SPEC.md and the issues name its fields;
// decoding with unknown fields disallowed catches a renamed field.
type statusDoc struct {
	Apps       []appDoc `json:"apps"`
	HistoryEnd string   `json:"history_end"`
}

type appDoc struct {
	Name              string            `json:"name"`
	Ports             []any             `json:"ports"`
	LBPolicy          string            `json:"lb_policy"`
	Listener          string            `json:"listener"`
	SteeredPorts      int               `json:"steered_ports"`
	Targets           []targetDoc       `json:"targets"`
	ActiveConnections int64             `json:"active_connections"`
	Rejections        map[string]uint64 `json:"rejections"`
	Rates             ratesDoc          `json:"rates"`
	History           *historyDoc       `json:"history"`
}

type targetDoc struct {
	Address              string      `json:"address"`
	Healthy              bool        `json:"healthy"`
	State                string      `json:"state"`
	Weight               int         `json:"weight"`
	Backup               bool        `json:"backup"`
	Source               string      `json:"source"`
	ActiveConnections    int64       `json:"active_connections"`
	TotalConnections     uint64      `json:"total_connections"`
	LastError            string      `json:"last_error"`
	LastCheck            time.Time   `json:"last_check"`
	LastChange           time.Time   `json:"last_change"`
	ConsecutiveSuccesses int         `json:"consecutive_successes"`
	ConsecutiveFailures  int         `json:"consecutive_failures"`
	BytesUp              uint64      `json:"bytes_up"`
	BytesDown            uint64      `json:"bytes_down"`
	DialErrors           uint64      `json:"dial_errors"`
	Rates                ratesDoc    `json:"rates"`
	History              *historyDoc `json:"history"`
}

// ratesDoc is the `rates` of an app or a target: over the newest slot of
// history.
type ratesDoc struct {
	ConnectionsPerSec float64 `json:"connections_per_sec"`
	BytesUpPerSec     float64 `json:"bytes_up_per_sec"`
	BytesDownPerSec   float64 `json:"bytes_down_per_sec"`
	RejectionsPerSec  float64 `json:"rejections_per_sec"`
	Active            int64   `json:"active"`
}

// historyDoc is the `history` of an app or a target: a missing series is
// all zeros.
type historyDoc struct {
	Interval           string             `json:"interval"`
	End                string             `json:"end"`
	Recorded           int                `json:"recorded"`
	Connections        []int64            `json:"connections"`
	Active             []int64            `json:"active"`
	BytesUp            []int64            `json:"bytes_up"`
	BytesDown          []int64            `json:"bytes_down"`
	Rejections         []int64            `json:"rejections"`
	RejectionsByReason map[string][]int64 `json:"rejections_by_reason"`
}

// getStatus reads GET /tcpproxy/status as a JSON client does.
func getStatus(t testing.TB, adminAddr string) statusDoc {
	t.Helper()
	resp, body := adminRequest(t, "GET", adminAddr, "/tcpproxy/status", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tcpproxy/status: %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var doc statusDoc
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("status JSON %s: %v", body, err)
	}
	return doc
}

func TestStatusListsEveryAppAndTarget(t *testing.T) {
	a1, a2, b1 := newBackend(t, "a1"), newBackend(t, "a2"), newBackend(t, "b1")
	ports := freePorts(t, 3)
	bind := []string{"127.0.0.1"}
	admin := loadConfigWithAdmin(t, proxyConfig(
		app{"name": "alpha", "ports": ports[:2], "bind": bind, "targets": addrs(a1, a2)},
		app{"name": "beta", "ports": ports[2:], "bind": bind, "targets": addrs(b1), "lb_policy": "least_conn"},
	))
	for i := 0; i < 3; i++ {
		echo(t, hostPort(ports[0]), "x")
	}
	held := dial(t, hostPort(ports[2]))
	defer held.Close()
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
		t.Fatal(err)
	}

	doc := getStatus(t, admin)
	type row struct {
		app, addr     string
		healthy       bool
		active, total int64
	}
	var got []row
	for _, a := range doc.Apps {
		for _, tg := range a.Targets {
			got = append(got, row{a.Name, tg.Address, tg.Healthy, tg.ActiveConnections, int64(tg.TotalConnections)})
		}
	}
	// Round robin gave a1 two of the three connections, a2 one; the
	// connection held on beta is active. The echo connections may still be
	// ending when the status is read, so their active count is not checked.
	want := []row{
		{"alpha", a1.addr, true, 0, 2},
		{"alpha", a2.addr, true, 0, 1},
		{"beta", b1.addr, true, 1, 1},
	}
	if len(got) != len(want) {
		t.Fatalf("status rows %+v, want %+v", got, want)
	}
	for i := range want {
		g := got[i]
		if want[i].app == "alpha" {
			g.active = 0
		}
		if g != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(doc.Apps) != 2 {
		t.Fatalf("%d apps, want 2", len(doc.Apps))
	}
	if p := doc.Apps[0].Ports; len(p) != 2 || p[0] != float64(ports[0]) || p[1] != float64(ports[1]) {
		t.Errorf("alpha ports %v, want %v", p, ports[:2])
	}
	if doc.Apps[0].LBPolicy != "round_robin" || doc.Apps[1].LBPolicy != "least_conn" {
		t.Errorf("policies %q, %q; want round_robin (the default), least_conn",
			doc.Apps[0].LBPolicy, doc.Apps[1].LBPolicy)
	}
	for _, a := range doc.Apps {
		if a.Listener != "sockets" || a.SteeredPorts != 0 {
			t.Errorf("app %s: listener %q with %d steered ports, want sockets (the default) with 0",
				a.Name, a.Listener, a.SteeredPorts)
		}
	}
	// The first health round runs at start: every target has been probed.
	waitFor(t, 10*time.Second, "a first health check of every target", func() bool {
		for _, a := range getStatus(t, admin).Apps {
			for _, tg := range a.Targets {
				if tg.LastCheck.IsZero() || tg.ConsecutiveSuccesses < 1 || tg.LastError != "" {
					return false
				}
			}
		}
		return true
	})
}

func TestStatusShowsKilledTargetDownWithLastError(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "killed", "ports": []int{port}, "bind": []string{"127.0.0.1"},
		"targets": addrs(a, b), "health_checks": map[string]any{"interval": "100ms", "timeout": "500ms", "fall": 2}}))

	b.stop()
	before := time.Now()
	waitFor(t, 10*time.Second, "status to show b down", func() bool {
		return !getStatus(t, admin).Apps[0].Targets[1].Healthy
	})
	doc := getStatus(t, admin)
	ta, tb := doc.Apps[0].Targets[0], doc.Apps[0].Targets[1]
	if tb.Address != b.addr || tb.LastError == "" || tb.ConsecutiveFailures < 2 || tb.ConsecutiveSuccesses != 0 {
		t.Errorf("down target %+v: want address %s, a last error, ≥2 failures in a row (fall), no successes", tb, b.addr)
	}
	if !strings.Contains(tb.LastError, "refused") {
		t.Errorf("last error %q, want the probe's connection refused", tb.LastError)
	}
	if tb.LastChange.Before(before) || tb.LastCheck.Before(before) {
		t.Errorf("down target last_change %v, last_check %v: want both after the kill (%v)",
			tb.LastChange, tb.LastCheck, before)
	}
	if !ta.Healthy || ta.LastError != "" {
		t.Errorf("live target %+v: want healthy, no error", ta)
	}

	b.restart()
	waitFor(t, 10*time.Second, "status to show b up again", func() bool {
		return getStatus(t, admin).Apps[0].Targets[1].Healthy
	})
}

func TestStatusRejectsMethodsOtherThanGET(t *testing.T) {
	admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "m", "ports": []int{freePort(t)},
		"bind": []string{"127.0.0.1"}, "targets": []string{"127.0.0.1:1"}}))
	for _, path := range []string{"/tcpproxy/status", "/tcpproxy/"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			resp, body := adminRequest(t, method, admin, path, "")
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s, want 405", method, path, resp.Status)
			}
			var apiErr struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &apiErr); err != nil || !strings.Contains(apiErr.Error, method) {
				t.Errorf("%s %s: body %s, want a JSON error naming the method", method, path, body)
			}
			if allow := resp.Header.Get("Allow"); allow != "GET" {
				t.Errorf("%s %s: Allow %q, want GET", method, path, allow)
			}
		}
	}
}

func TestStatusWithoutTcpproxyAppListsNoApps(t *testing.T) {
	admin := loadConfigWithAdmin(t, nil)
	_, body := adminRequest(t, "GET", admin, "/tcpproxy/status", "")
	if got := strings.TrimSpace(string(body)); got != `{"apps":[]}` {
		t.Errorf("status without a tcpproxy app: %s, want {\"apps\":[]}", got)
	}
	if doc := getStatus(t, admin); doc.Apps == nil {
		t.Error("apps is null, want []")
	}
}

func TestStatusPageIsServedToBrowsers(t *testing.T) {
	admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "page", "ports": []int{freePort(t)},
		"bind": []string{"127.0.0.1"}, "targets": []string{"127.0.0.1:1"}}))
	browserAccept := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, req := range []struct{ path, accept string }{
		{"/tcpproxy/", ""},
		{"/tcpproxy/", browserAccept},
		{"/tcpproxy/status", browserAccept},
	} {
		resp, body := adminRequest(t, "GET", admin, req.path, req.accept)
		page := string(body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s (Accept %q): %s %s", req.path, req.accept, resp.Status, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(page, `"name":"page"`) || !strings.Contains(page, "setInterval(refresh, 2000)") {
			t.Errorf("GET %s: page without the embedded status or its refresh:\n%s", req.path, page)
		}
		// Self-contained: nothing is loaded from elsewhere.
		for _, ref := range []string{"src=", "href=", "@import", "url("} {
			if strings.Contains(page, ref) {
				t.Errorf("GET %s: page refers to an outside resource (%s)", req.path, ref)
			}
		}
	}
	if resp, _ := adminRequest(t, "GET", admin, "/tcpproxy/nothing-here", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /tcpproxy/nothing-here: %s, want 404", resp.Status)
	}
}

func TestStatusDuringReloadsAlwaysListsTheApp(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	cfg := func(bs ...*backend) any {
		return proxyConfig(app{"name": "reloading", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(bs...)})
	}
	admin := loadConfigWithAdmin(t, cfg(a, b))

	// Read the status, as the handler does, while configs come and go:
	// a request may get the config being replaced, which Caddy cleans up
	// under it (go test -race checks that this is safe).
	stop := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		defer close(bad)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := tcpproxyApp(caddy.ActiveContext())
			var apps []appStatus
			if a != nil {
				apps = a.status(statusOptions{history: true})
			}
			if err != nil || len(apps) != 1 || apps[0].Name != "reloading" || len(apps[0].Targets) == 0 {
				bad <- fmt.Sprintf("status %+v, error %v", apps, err)
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		targets := []*backend{a, b}[:1+i%2] // b comes and goes
		if err := tryLoadWith(cfg(targets...), withAdmin(admin)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	close(stop)
	if msg, ok := <-bad; ok {
		t.Errorf("during reloads: %s", msg)
	}
}
