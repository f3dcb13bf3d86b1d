package tcpproxy

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// The HTTP app and basic_auth, for the handler's site.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
)

// Tests of the `tcpproxy_status` HTTP handler in a real Caddy config: what
// a browser and a JSON client get on the operator's own listener.

// statusServer is the config of Caddy's http app with one server on addr
// whose every request goes to the tcpproxy_status handler.
func statusServer(addr string) map[string]any {
	return map[string]any{"servers": map[string]any{"status": map[string]any{
		"listen":          []string{addr},
		"automatic_https": map[string]any{"disable": true},
		"routes":          []any{map[string]any{"handle": []any{map[string]any{"handler": "tcpproxy_status"}}}},
	}}}
}

// tryLoadWithStatus loads (or reloads) the tcpproxy app config (none
// when nil) with the status handler served on statusAddr, and the
// top-level keys of extra (such as withAdmin).
func tryLoadWithStatus(tcpproxyApp any, statusAddr string, extra map[string]any) error {
	apps := map[string]any{"http": statusServer(statusAddr)}
	if tcpproxyApp != nil {
		apps["tcpproxy"] = tcpproxyApp
	}
	cfg := map[string]any{"apps": apps}
	maps.Copy(cfg, extra)
	return tryLoadWith(nil, cfg)
}

// browserHeaders are what Chromium sends when an address is typed in:
// the Sec-Fetch headers that make Caddy's admin API demand an Origin.
var browserHeaders = map[string]string{
	"Accept":         "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
	"Sec-Fetch-Mode": "navigate",
	"Sec-Fetch-Site": "none",
	"Sec-Fetch-Dest": "document",
	"User-Agent":     "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36",
}

// httpGet sends a request with the given headers and returns the response
// with its body read; connection errors are retried for a while (a
// listener of a config being loaded).
func httpGet(t testing.TB, method, url string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				return resp, string(body)
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decodeStatus decodes a status JSON body strictly (statusDoc).
func decodeStatus(t testing.TB, body string) statusDoc {
	t.Helper()
	var doc statusDoc
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("status JSON %s: %v", body, err)
	}
	return doc
}

// isPage reports whether a response is the status page with embedded
// status naming app.
func isPage(resp *http.Response, body, app string) bool {
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") &&
		strings.Contains(body, `<title>tcpproxy status</title>`) && strings.Contains(body, `"name":"`+app+`"`)
}

func TestStatusHandlerServesPageAndJSON(t *testing.T) {
	clock := newSampleClock(t, 2)
	web := newBackend(t, "web")
	port, statusAddr := freePort(t), hostPort(freePort(t))
	if err := tryLoadWithStatus(proxyConfig(app{"name": "served", "ports": []int{port},
		"bind": []string{"127.0.0.1"}, "targets": addrs(web)}), statusAddr, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	echo(t, hostPort(port), "hello")
	waitBytes(t, lookupTarget(t, "served", web.addr), 5, 4+5)
	clock.tick()
	base := "http://" + statusAddr

	// A browser opening the address, with no admin origins configured
	// anywhere: the page, on any path the handler is routed.
	for _, path := range []string{"/", "/status", "/?format=html"} {
		resp, body := httpGet(t, "GET", base+path, browserHeaders)
		if !isPage(resp, body, "served") {
			t.Errorf("GET %s as a browser: %s %s, want the page:\n%.300s", path, resp.Status, resp.Header.Get("Content-Type"), body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'none'", path, csp)
		}
	}
	if resp, body := httpGet(t, "GET", base+"/", nil); !isPage(resp, body, "served") {
		t.Errorf("GET / without Accept (curl): %s, want the page", resp.Status)
	}

	// JSON: asked for by Accept or by ?format=json, with the history.
	for _, req := range []struct {
		path   string
		header map[string]string
	}{
		{"/", map[string]string{"Accept": "application/json"}},
		{"/?format=json", nil},
		{"/?format=json", browserHeaders},
	} {
		resp, body := httpGet(t, "GET", base+req.path, req.header)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s %v: %s %s, want JSON", req.path, req.header, resp.Status, resp.Header.Get("Content-Type"))
		}
		doc := decodeStatus(t, body)
		if len(doc.Apps) != 1 || len(doc.Apps[0].Targets) != 1 {
			t.Fatalf("GET %s: %s", req.path, body)
		}
		a, tg := doc.Apps[0], doc.Apps[0].Targets[0]
		if a.Name != "served" || tg.Address != web.addr || tg.TotalConnections != 1 || tg.BytesUp != 5 || tg.BytesDown != 4+5 {
			t.Errorf("GET %s: app %s target %+v; want served, %s with 1 connection, 5 bytes up, 9 down", req.path, a.Name, tg, web.addr)
		}
		if doc.HistoryEnd != clock.end() || a.History == nil || tg.History == nil || tg.History.End != clock.end() {
			t.Fatalf("GET %s: history_end %q, app history %v, target history %v; want both, ending %s",
				req.path, doc.HistoryEnd, a.History, tg.History, clock.end())
		}
		wantPoints(t, "target connections", tg.History.Connections, 1)
		wantPoints(t, "app bytes_up", a.History.BytesUp, 5)
		if len(a.Rejections) != 7 || tg.Rates.ConnectionsPerSec != 0.1 {
			t.Errorf("GET %s: rejections %v (want all 7 reasons), target rates %+v (want 0.1 connections/s)",
				req.path, a.Rejections, tg.Rates)
		}
	}

	// ?history=0: the same without the series, as the page's refreshes ask.
	_, body := httpGet(t, "GET", base+"/?format=json&history=0", nil)
	if doc := decodeStatus(t, body); doc.Apps[0].History != nil || doc.Apps[0].Targets[0].History != nil ||
		doc.HistoryEnd != clock.end() || doc.Apps[0].Targets[0].TotalConnections != 1 {
		t.Errorf("?history=0: %s; want no history, history_end %s and the rest", body, clock.end())
	}

	for _, bad := range []string{"/?format=xml", "/?history=yes"} {
		if resp, _ := httpGet(t, "GET", base+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %s, want 400", bad, resp.Status)
		}
	}
	resp, _ := httpGet(t, "POST", base+"/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %s, Allow %q; want 405 and GET, HEAD", resp.Status, resp.Header.Get("Allow"))
	}
	if resp, body := httpGet(t, "HEAD", base+"/", nil); resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /: %s with %d bytes, want 200 and no body", resp.Status, len(body))
	}
}

func TestStatusHandlerKeepsWorkingAcrossReloads(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port, statusAddr := freePort(t), hostPort(freePort(t))
	cfg := func(name string, bs ...*backend) any {
		return proxyConfig(app{"name": name, "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(bs...)})
	}
	if err := tryLoadWithStatus(cfg("reloaded", a), statusAddr, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	url := "http://" + statusAddr + "/?format=json"
	prev := "reloaded"
	for i := range 6 {
		echo(t, hostPort(port), "x")
		// Targets come and go, and the app is renamed now and then.
		name, targets := "reloaded", []*backend{a, b}[:1+i%2]
		if i%3 == 2 {
			name = "renamed"
		}
		if err := tryLoadWithStatus(cfg(name, targets...), statusAddr, nil); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		_, body := httpGet(t, "GET", url, nil)
		doc := decodeStatus(t, body)
		if len(doc.Apps) != 1 || doc.Apps[0].Name != name || len(doc.Apps[0].Targets) != len(targets) {
			t.Fatalf("after reload %d: %s; want app %s with %d targets", i+1, body, name, len(targets))
		}
		// A reload that keeps the app keeps its counts; a renamed app
		// is a new one.
		if tg := doc.Apps[0].Targets[0]; (name == prev) != (tg.TotalConnections > 0) {
			t.Errorf("after reload %d (app %s, was %s): target a has %d connections", i+1, name, prev, tg.TotalConnections)
		}
		prev = name
		if resp, page := httpGet(t, "GET", "http://"+statusAddr+"/", browserHeaders); !isPage(resp, page, name) {
			t.Errorf("after reload %d: the page is %s, want it with app %s", i+1, resp.Status, name)
		}
	}
	// A config without the tcpproxy app: the handler says so.
	if err := tryLoadWithStatus(nil, statusAddr, nil); err == nil {
		_, body := httpGet(t, "GET", url, nil)
		if strings.TrimSpace(body) != `{"apps":[]}` {
			t.Errorf("without a tcpproxy app: %s, want {\"apps\":[]}", body)
		}
	} else {
		t.Fatalf("loading a config without the tcpproxy app: %v", err)
	}
}

// adaptCaddyfile adapts a Caddyfile to Caddy JSON, failing on warnings.
func adaptCaddyfile(t testing.TB, text string) []byte {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting:\n%s\n%v", text, err)
	}
	if len(warnings) > 0 {
		t.Fatalf("adapting:\n%s\nwarnings %v", text, warnings)
	}
	return out
}

// The whole setup the issue asks for: `:8404 { tcpproxy_status }`, with
// no `route` block around it.
func TestStatusDirectiveInCaddyfile(t *testing.T) {
	web := newBackend(t, "web")
	port, statusPort, sharedPort := freePort(t), freePort(t), freePort(t)
	cfg := adaptCaddyfile(t, `{
	admin off
	persist_config off
	tcpproxy {
		app caddyfile-app {
			ports `+strconv.Itoa(port)+`
			bind 127.0.0.1
			targets `+web.addr+`
		}
	}
}
:`+strconv.Itoa(statusPort)+` {
	bind 127.0.0.1
	tcpproxy_status
}
:`+strconv.Itoa(sharedPort)+` {
	bind 127.0.0.1
	handle_path /tcp/* {
		tcpproxy_status
	}
	respond "something else"
}
`)
	if !strings.Contains(string(cfg), `"handler":"tcpproxy_status"`) {
		t.Fatalf("adapted config has no tcpproxy_status handler: %s", cfg)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	resp, body := httpGet(t, "GET", "http://"+hostPort(statusPort)+"/", browserHeaders)
	if !isPage(resp, body, "caddyfile-app") {
		t.Errorf("GET / of the Caddyfile site: %s, want the page", resp.Status)
	}
	// On a path of a site that serves other things too: the page, and
	// the JSON its script fetches from the page's own path.
	shared := "http://" + hostPort(sharedPort)
	if resp, body := httpGet(t, "GET", shared+"/tcp/", browserHeaders); !isPage(resp, body, "caddyfile-app") {
		t.Errorf("GET /tcp/: %s, want the page", resp.Status)
	}
	if _, body := httpGet(t, "GET", shared+"/tcp/?format=json&history=0", nil); decodeStatus(t, body).Apps[0].Name != "caddyfile-app" {
		t.Errorf("GET /tcp/?format=json: %s", body)
	}
	if _, body := httpGet(t, "GET", shared+"/", nil); body != "something else" {
		t.Errorf("GET / of the shared site: %q, want the other handler's answer", body)
	}

	for _, bad := range []struct{ directive, want string }{
		{"tcpproxy_status extra", `takes no arguments, got "extra"`},
		{"tcpproxy_status {\n\t\tsomething\n\t}", `takes no block, got "something"`},
	} {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":8404 {\n\t"+bad.directive+"\n}\n"), nil)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want one saying %s", bad.directive, err, bad.want)
		}
	}
}

// examplePorts rewrites an example's fixed ports to free ones, so that a
// test can load it as written otherwise.
func examplePorts(t testing.TB, text string, ports ...string) string {
	t.Helper()
	for _, p := range ports {
		if !strings.Contains(text, p) {
			t.Fatalf("the example no longer uses port %s", p)
		}
		text = strings.ReplaceAll(text, p, strconv.Itoa(freePort(t)))
	}
	return text
}

// examples/status.caddyfile: the page on localhost behind basic_auth.
func TestStatusExampleBehindBasicAuth(t *testing.T) {
	raw, err := os.ReadFile("examples/status.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	text := examplePorts(t, string(raw), "8404", "5432")
	// The example's admin API stays as written, except in a test.
	text = strings.Replace(text, "{\n", "{\n\tadmin off\n\tpersist_config off\n", 1)
	cfg := adaptCaddyfile(t, text)
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	var doc struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &doc); err != nil || len(doc.Apps.HTTP.Servers) != 1 {
		t.Fatalf("adapted example: %v, %s", err, cfg)
	}
	var listen []string
	for _, s := range doc.Apps.HTTP.Servers {
		listen = s.Listen
	}
	if len(listen) != 1 || !strings.HasPrefix(strings.TrimPrefix(listen[0], "tcp/"), "127.0.0.1:") {
		t.Fatalf("the example's status site listens on %v, want 127.0.0.1 only", listen)
	}
	url := "http://" + strings.TrimPrefix(listen[0], "tcp/") + "/"
	if resp, body := httpGet(t, "GET", url, browserHeaders); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "tcpproxy") {
		t.Errorf("GET without credentials: %s, want 401 and nothing of the status", resp.Status)
	}
	auth := map[string]string{"Authorization": "Basic " + basicAuth("ops", "change-me")}
	for k, v := range browserHeaders {
		auth[k] = v
	}
	if resp, body := httpGet(t, "GET", url, auth); !isPage(resp, body, "postgres") {
		t.Errorf("GET with the example's credentials: %s, want the page with app postgres", resp.Status)
	}
}

func basicAuth(user, password string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(user, password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// examples/demo.json, the README's first command: its status page opens
// in a browser as it is.
func TestDemoServesTheStatusPage(t *testing.T) {
	raw, err := os.ReadFile("examples/demo.json")
	if err != nil {
		t.Fatal(err)
	}
	text := examplePorts(t, string(raw), "8404", "5001", "5002", "5003", "5004", "9001", "9002")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["admin"] = map[string]any{"disabled": true, "config": map[string]any{"persist": false}}
	b, _ := json.Marshal(cfg)
	if err := caddy.Load(b, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	status, ok := servers["status"].(map[string]any)
	if !ok {
		t.Fatalf("the demo has no http server named status: %v", servers)
	}
	addr := status["listen"].([]any)[0].(string)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("the demo's status page listens on %s, want 127.0.0.1 only", addr)
	}
	if resp, body := httpGet(t, "GET", "http://"+addr+"/", browserHeaders); !isPage(resp, body, "demo") {
		t.Errorf("the demo's status page: %s, want the page with app demo", resp.Status)
	}
}
