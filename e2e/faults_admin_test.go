package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Hostile input on the admin API: huge, broken and deeply nested bodies.

// hostileBody is one bad request body, in the shape each kind of
// endpoint reads, so that it reaches the plugin's decoder and is not
// turned away before.
type hostileBody struct {
	name string
	// full builds the body of POST /load for a content type: a whole
	// Caddy config (application/json), the plain config.json
	// (text/tcpproxy), a Caddyfile (text/caddyfile); or of POST
	// /config/apps/tcpproxy (the app itself: "app").
	full func(kind string) []byte
}

const tenMiB = 10 << 20

// wrap puts an app list (JSON) where each kind of body has it. A whole
// config keeps the admin address: were it accepted, the test would still
// reach the admin API to see the damage. (The plain format has no admin
// address: an accepted one moves the admin API to Caddy's default.)
func wrap(kind, admin, apps string) []byte {
	switch kind {
	case "application/json":
		return []byte(`{"admin":{"listen":"` + admin + `","config":{"persist":false}},"apps":{"tcpproxy":{"apps":` + apps + `}}}`)
	case "text/tcpproxy":
		return []byte(`{"Apps":` + apps + `}`)
	default: // "app"
		return []byte(`{"apps":` + apps + `}`)
	}
}

func hostileBodies(admin string, port int, target string) []hostileBody {
	wrap := func(kind, apps string) []byte { return wrap(kind, admin, apps) }
	caddyfile := func(option string) []byte {
		return []byte("{\n\tadmin " + admin + "\n\ttcpproxy {\n" + option)
	}
	huge := strings.Repeat("a", tenMiB)
	return []hostileBody{
		{"10 MiB app name", func(kind string) []byte {
			if kind == "text/caddyfile" {
				return caddyfile(fmt.Sprintf("\t\tapp %s {\n\t\t\tports %d\n\t\t\ttargets %s\n\t\t\tbind 127.0.0.1\n\t\t}\n\t}\n}\n", huge, port, target))
			}
			return wrap(kind, fmt.Sprintf(`[{"name":%q,"ports":[%d],"targets":[%q],"bind":["127.0.0.1"]}]`, huge, port, target))
		}},
		{"10 MiB target list", func(kind string) []byte {
			targets := strings.Repeat(`"127.0.0.1:1",`, tenMiB/14) + `"127.0.0.1:1"`
			if kind == "text/caddyfile" {
				return caddyfile(fmt.Sprintf("\t\tapp big {\n\t\t\tports %d\n\t\t\ttargets %s\n\t\t\tbind 127.0.0.1\n\t\t}\n\t}\n}\n",
					port, strings.Repeat("127.0.0.1:1 ", tenMiB/12)))
			}
			return wrap(kind, fmt.Sprintf(`[{"name":"big","ports":[%d],"targets":[%s],"bind":["127.0.0.1"]}]`, port, targets))
		}},
		{"10 MiB of garbage", func(string) []byte { return bytes.Repeat([]byte("\x00garbage{["), tenMiB/10) }},
		{"invalid JSON", func(kind string) []byte {
			if kind == "text/caddyfile" {
				return caddyfile("\t\tapp x {\n\t\t\tports 1\n")
			}
			return wrap(kind, `[{"name":"x","ports":[1],"targets":["127.0.0.1:1"],}]`)
		}},
		{"truncated JSON", func(kind string) []byte { return wrap(kind, `[{"name":"x","ports":[1],"tar`)[:40] }},
		{"deeply nested arrays", func(kind string) []byte {
			if kind == "text/caddyfile" {
				return caddyfile(strings.Repeat("app x {\n", 100000) + strings.Repeat("}\n", 100002))
			}
			return wrap(kind, strings.Repeat("[", 1000000)+strings.Repeat("]", 1000000))
		}},
		{"nested 20,000 deep in 40 KB", func(kind string) []byte {
			// Small enough for every endpoint to parse, not only to refuse.
			return []byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000))
		}},
		{"deeply nested objects", func(kind string) []byte {
			nested := strings.Repeat(`{"a":`, 1000000) + "1" + strings.Repeat("}", 1000000)
			if kind == "text/caddyfile" {
				return caddyfile("\t\tapp x {\n" + strings.Repeat("health_interval {\n", 100000) + strings.Repeat("}\n", 100003))
			}
			return wrap(kind, fmt.Sprintf(`[{"name":"x","ports":[%d],"targets":[%q],"health_checks":%s}]`, port, target, nested))
		}},
	}
}

// TestFaultHostileAdminInput: fault 8. Huge, invalid and deeply nested
// bodies sent to POST /load (in the three formats that reach the
// plugin), to the plugin's app config (POST /config/apps/tcpproxy) and
// to every endpoint of the plugin's own: each gets a 4xx answer, nothing
// panics, and the running config is untouched and still serving.
func TestFaultHostileAdminInput(t *testing.T) {
	be := newEchoBackend(t, "A")
	port := freePort(t)
	proc := startCaddy(t, proxyCfg{Apps: []appCfg{app("admin", []int{port}, be.addr)}})
	_, before, err := proc.get("/config/")
	if err != nil {
		t.Fatal(err)
	}
	type endpoint struct{ method, path, contentType, kind string }
	endpoints := []endpoint{
		{"POST", "/load", "application/json", "application/json"},
		{"POST", "/load", "text/tcpproxy", "text/tcpproxy"},
		{"POST", "/load", "text/caddyfile", "text/caddyfile"},
		// Caddy's config API answers 500 to any body it cannot load
		// (its handler, not the plugin's): here only "not accepted".
		{"POST", "/config/apps/tcpproxy", "application/json", "app"},
		{"POST", "/tcpproxy/status", "application/json", "application/json"},
		{"GET", "/tcpproxy/status", "application/json", "application/json"},
		{"POST", "/tcpproxy/", "application/json", "application/json"},
	}
	// POST /tcpproxy/targets (runtime target state) once it exists.
	if code, _, err := proc.post("/tcpproxy/targets", "application/json", []byte("{}")); err == nil && code != http.StatusNotFound {
		endpoints = append(endpoints, endpoint{"POST", "/tcpproxy/targets", "application/json", "app"})
	} else {
		t.Log("POST /tcpproxy/targets does not exist (yet): not tested")
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	logBefore := logSize(t, proc)
	var largestAnswer int
	statuses := map[int]int{} // of Caddy's /config/ API
	requests := 0
	var cpuLoad time.Duration // Caddy's CPU time for the POST /load requests
	for _, body := range hostileBodies(proc.admin, port, be.addr) {
		for _, ep := range endpoints {
			if !longFaults && skipInShortRun(body.name, ep.path, ep.kind) {
				continue
			}
			b := body.full(ep.kind)
			cpuBefore := mustCPU(t, proc.pid())
			req, err := http.NewRequest(ep.method, "http://"+proc.admin+ep.path, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ep.contentType)
			start := time.Now()
			resp, err := client.Do(req)
			requests++
			what := fmt.Sprintf("%s %s (%s), %s (%.1f MiB)", ep.method, ep.path, ep.contentType, body.name, mib(int64(len(b))))
			if err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cpu := mustCPU(t, proc.pid()) - cpuBefore
			if ep.path == "/load" {
				cpuLoad += cpu
			}
			largestAnswer = max(largestAnswer, len(answer))
			caddys := strings.HasPrefix(ep.path, "/config/")
			if ep.method == http.MethodGet {
				// A GET with a body: the body is ignored.
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %.200s, want 200", what, resp.StatusCode, answer)
				}
			} else if caddys && resp.StatusCode >= 400 {
				statuses[resp.StatusCode]++
			} else if resp.StatusCode < 400 || resp.StatusCode > 499 {
				if resp.StatusCode < 300 && !strings.HasPrefix(ep.path, "/tcpproxy/") {
					// Accepted: the config has changed, perhaps the
					// admin address too. Nothing more to learn.
					t.Fatalf("%s: %d %.200s: the hostile config was loaded", what, resp.StatusCode, answer)
				}
				t.Errorf("%s: %d %.200s, want a 4xx answer", what, resp.StatusCode, answer)
			} else if testing.Verbose() {
				t.Logf("%s: %d in %s (%s of Caddy's CPU), %d bytes: %.160s", what, resp.StatusCode,
					time.Since(start).Round(time.Millisecond), cpu, len(answer), answer)
			}
			if proc.exited() {
				t.Fatalf("%s: caddy exited: %v", what, proc.waitErr)
			}
		}
	}
	_, after, err := proc.get("/config/")
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the running config changed:\nbefore %.500s\nafter  %.500s", before, after)
	}
	checkServes(t, "after the hostile requests", port)
	if proc.logContains("panic") {
		t.Error("the log mentions a panic")
	}
	logGrowth := logSize(t, proc) - logBefore
	figure(t, "hostile admin input: %d requests (%d bodies x %d endpoints): /load and the plugin's endpoints all 4xx (a GET's body ignored), Caddy's /config/ API %v; no panic, config unchanged; largest answer %d bytes, log grew by %.1f MiB; Caddy's CPU for the /load requests %s",
		requests, len(hostileBodies(proc.admin, port, be.addr)), len(endpoints), statuses, largestAnswer, mib(logGrowth), cpuLoad)
	if largestAnswer > 64<<10 {
		t.Errorf("an error answer is %d bytes: errors must not echo huge input", largestAnswer)
	}
}

// skipInShortRun leaves out of the run CI makes the slowest requests that
// test Caddy more than the plugin: megabytes of Caddyfile tokens go
// through Caddy's tokenizer before the plugin sees any, and Caddy's own
// /config/ API decodes a body before the plugin does. A huge token (the
// app name) still reaches the plugin's Caddyfile option.
func skipInShortRun(body, path, kind string) bool {
	big := strings.HasPrefix(body, "10 MiB") || strings.HasPrefix(body, "deeply")
	return big && (path == "/config/apps/tcpproxy" || kind == "text/caddyfile" && body != "10 MiB app name")
}

func logSize(t *testing.T, proc *caddyProc) int64 {
	t.Helper()
	fi, err := os.Stat(proc.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
