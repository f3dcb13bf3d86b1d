package tcpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/html"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// The status page as an operator sees it: rendered by headless Chromium,
// its script run, its refreshes fetched from the tcpproxy_status handler.

// chromiumPath returns the Chromium binary. Without one the test is
// skipped, unless it runs in CI (CI set), where that is a failure: CI must
// install chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; CI must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); with CI set this is a failure")
	return ""
}

// runChromium runs headless Chromium with a window width × height on
// args (a URL and what to do with it) and returns its standard output.
// It returns an error rather than failing the test, so that several can
// run at once.
func runChromium(bin string, width, height int, args ...string) ([]byte, error) {
	profile, err := os.MkdirTemp("", "tcpproxy-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, fmt.Sprintf("--window-size=%d,%d", width, height),
	}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // its helper processes may hold the pipes
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("chromium %v: %v\n%s", args, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// renderedPage is what the tests read of the DOM Chromium dumped.
type renderedPage struct {
	rows      map[string]pageRow           // target rows by address
	charts    map[string]map[string]string // "app" or "app target" -> series -> polyline points
	sections  map[string]string            // app sections' text by app name
	refreshes string                       // how often the script refreshed
	fits      string                       // whether the page fits the window's width
}

// pageRow is a target's row in the rendered page.
type pageRow struct {
	class, text string
}

// parsePage parses the DOM Chromium dumped.
func parsePage(t *testing.T, dom []byte) renderedPage {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatalf("parsing the dumped DOM: %v", err)
	}
	p := renderedPage{rows: map[string]pageRow{}, charts: map[string]map[string]string{}, sections: map[string]string{}}
	var walk func(n *html.Node, app, target string)
	walk = func(n *html.Node, app, target string) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "section":
				app = attr(n, "data-app")
				p.sections[app] = textOf(n)
			case "tr":
				if addr := attr(n, "data-target"); addr != "" {
					target = addr
					p.rows[addr] = pageRow{class: attr(n, "class"), text: textOf(n)}
				}
			case "svg":
				key := strings.TrimSpace(app + " " + target)
				if p.charts[key] == nil {
					p.charts[key] = map[string]string{}
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "polyline" {
						p.charts[key][attr(n, "data-series")] = attr(c, "points")
					}
				}
			case "body":
				p.refreshes, p.fits = attr(n, "data-refreshes"), attr(n, "data-fits")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, app, target)
		}
	}
	walk(doc, "", "")
	return p
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
		b.WriteString(" ")
	}
	return b.String()
}

// chromiumRun is one Chromium run of a test: a window size and the page
// to dump and take a screenshot of.
type chromiumRun struct {
	width, height int
	url, shot     string
	dom           []byte
	err           error
}

// runAll runs Chromium on each run at once (each run takes seconds of
// mostly waiting) and fails the test on any error.
func runAll(t *testing.T, runs ...*chromiumRun) {
	t.Helper()
	bin := chromiumPath(t)
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			// The virtual time budget lets the 2 s refresh run twice;
			// virtual time stands still while a fetch is in flight.
			r.dom, r.err = runChromium(bin, r.width, r.height, "--virtual-time-budget=5000", "--hide-scrollbars",
				"--screenshot="+r.shot, "--dump-dom", r.url)
		})
	}
	wg.Wait()
	for _, r := range runs {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
}

// TestStatusPageInChromiumShowsDownTarget renders the page of the
// tcpproxy_status handler, with no admin origins configured, after a few
// minutes of simulated traffic in which one target went down and one was
// drained. Set TCPPROXY_STATUS_SCREENSHOT to a .png path to keep the
// screenshot (docs/status.png is made this way, with 15 minutes of
// traffic).
func TestStatusPageInChromiumShowsDownTarget(t *testing.T) {
	chromiumPath(t)
	keep := os.Getenv("TCPPROXY_STATUS_SCREENSHOT")
	slots := 24
	if keep != "" {
		slots = history.Slots
	}
	clock := newSampleClock(t, slots)
	web1, web2, web3, db := newBackend(t, "web-1"), newBackend(t, "web-2"), newBackend(t, "web-3"), newBackend(t, "db")
	ports := freePorts(t, 3)
	bind := []string{"127.0.0.1"}
	admin, statusAddr := hostPort(freePort(t)), hostPort(freePort(t))
	if err := tryLoadWithStatus(proxyConfig(
		app{"name": "five-thousand", "ports": ports[:2], "bind": bind,
			"targets":       []any{web1.addr, web2.addr, weighted(web3.addr, 2, false)},
			"health_checks": map[string]any{"interval": "100ms", "timeout": "500ms"}},
		app{"name": "postgres", "ports": ports[2:], "bind": bind, "targets": addrs(db), "lb_policy": "least_conn",
			"max_connections": 3},
	), statusAddr, withAdmin(admin)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	// Traffic with a shape: a wave of connections and of message sizes;
	// two thirds in, web-2 dies; later web-3 is drained; halfway, postgres
	// has a burst of clients beyond max_connections.
	pg := hostPort(ports[2])
	var held []net.Conn
	for k := range slots {
		switch k {
		case slots * 2 / 3:
			web2.stop()
			waitFor(t, 10*time.Second, "web-2 to be marked down", func() bool {
				return !lookupTarget(t, "five-thousand", web2.addr).healthy.Load()
			})
		case slots * 5 / 6:
			mustSetState(t, admin, "five-thousand", web3.addr, "drain", false)
		case slots / 2:
			for range 3 {
				c := dial(t, pg)
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			mustBeClosed(t, pg)
			mustBeClosed(t, pg)
		case slots/2 + 2:
			for _, c := range held {
				c.Close()
			}
			held = nil
			waitFor(t, 10*time.Second, "postgres's held connections to end", func() bool {
				return lookupTarget(t, "postgres", db.addr).node.Active.Load() == 0
			})
		}
		wave := math.Sin(float64(k) / float64(slots) * 3 * math.Pi)
		for i := range 4 + int(3*wave) {
			echo(t, hostPort(ports[i%2]), strings.Repeat("x", 2000+int(1500*(1+wave))*(1+k%3)))
		}
		if len(held) == 0 { // a slower wave of queries
			for range 1 + int(2*(1+math.Cos(float64(k)/float64(slots)*2*math.Pi))) {
				echo(t, pg, "select * from t;")
			}
		}
		clock.tick()
	}
	held0 := dial(t, pg) // one postgres client connected now
	defer held0.Close()
	if _, err := bufio.NewReader(held0).ReadString('\n'); err != nil {
		t.Fatal(err)
	}

	url := "http://" + statusAddr + "/"
	wide := &chromiumRun{width: 1200, height: 1000, url: url, shot: keep}
	if wide.shot == "" {
		wide.shot = t.TempDir() + "/status.png"
	}
	// Headless Chromium's narrowest window is 500 px: already the
	// narrow layout, each target a card. This run also shows the page a
	// status with fields it does not know, as a newer plugin's would be.
	narrow := &chromiumRun{width: 500, height: 1800, url: futureStatusServer(t, url), shot: t.TempDir() + "/narrow.png"}
	runAll(t, wide, narrow)
	checkUnknownFields(t, narrow)

	page := parsePage(t, wide.dom)
	if sec := page.sections["five-thousand"]; !strings.Contains(sec, "listener sockets") {
		t.Errorf("the page does not show the app's listener mode (\"listener sockets\"): %q", sec)
	}
	if page.refreshes == "" || page.refreshes == "0" {
		t.Errorf("the page's script never refreshed from the JSON (data-refreshes %q)", page.refreshes)
	}
	for _, want := range []struct {
		addr, class, state string
	}{
		{web1.addr, "up", "UP"},
		{web2.addr, "down", "DOWN"},
		{web3.addr, "drain", "DRAIN"},
		{db.addr, "up", "UP"},
	} {
		row, ok := page.rows[want.addr]
		if !ok {
			t.Errorf("no row for target %s in the rendered page:\n%s", want.addr, wide.dom)
			continue
		}
		if row.class != want.class || !strings.Contains(row.text, want.state) || !strings.Contains(row.text, " ago)") {
			t.Errorf("row of %s: class %q, text %q; want class %q, %s and the age of its last change",
				want.addr, row.class, row.text, want.class, want.state)
		}
	}
	if row := page.rows[web2.addr]; !strings.Contains(row.text, "refused") {
		t.Errorf("down row %q does not show the last error", row.text)
	}
	if s := page.sections["postgres"]; !strings.Contains(s, "max_connections 2") {
		t.Errorf("postgres section %q does not show its 2 max_connections rejections", s)
	}

	// The sparklines are drawn from the history exactly as
	// history.SparklinePoints draws it, and have the traffic's shape.
	_, body := httpGet(t, "GET", url+"?format=json", nil)
	doc := decodeStatus(t, body)
	for _, a := range doc.Apps {
		want := map[string]*historyDoc{a.Name: a.History}
		for _, tg := range a.Targets {
			want[a.Name+" "+tg.Address] = tg.History
		}
		for key, h := range want {
			w, ht := 120.0, 24.0
			if !strings.Contains(key, " ") {
				w, ht = 240, 40
			}
			points := page.charts[key]["connections"]
			if got := history.SparklinePoints(seriesOrZeros(h.Connections), w, ht); points != got {
				t.Errorf("%s: connections sparkline %q, want %q", key, points, got)
			}
			if n := len(strings.Fields(points)); n != history.Slots {
				t.Errorf("%s: connections sparkline has %d points, want %d", key, n, history.Slots)
			}
			if _, ok := page.charts[key]["throughput"]; !ok {
				t.Errorf("%s: no throughput sparkline", key)
			}
		}
	}
	for _, key := range []string{"five-thousand", "five-thousand " + web1.addr, "postgres"} {
		if ys := distinctY(page.charts[key]["connections"]); ys < 3 {
			t.Errorf("%s: the connections sparkline has %d distinct heights, want the traffic's shape", key, ys)
		}
	}
	if tail := strings.Fields(page.charts["five-thousand "+web2.addr]["connections"]); !strings.HasSuffix(tail[len(tail)-1], ",24") {
		t.Errorf("web-2's connections sparkline does not end at 0 after it went down: %v", tail[len(tail)-3:])
	}
	if _, ok := page.charts["postgres"]["rejections"]; !ok {
		t.Error("postgres has no rejections sparkline after its rejections")
	}

	// The screenshot shows rows in the page's colours: green for a target
	// up, red for one down, amber for one drained; and the charts' lines.
	for _, r := range []*chromiumRun{wide, narrow} {
		counts := colourCounts(t, r.shot)
		for name, c := range map[string]color.RGBA{
			"up row":           {0xe8, 0xf5, 0xe9, 0xff},
			"down row":         {0xff, 0xeb, 0xee, 0xff},
			"DOWN badge":       {0xc6, 0x28, 0x28, 0xff},
			"drain row":        {0xff, 0xf3, 0xe0, 0xff},
			"connections line": {0x15, 0x65, 0xc0, 0xff},
		} {
			if counts[c] < 100 {
				t.Errorf("screenshot %s (%d px wide): %d pixels of the %s colour %v, want a visible area",
					r.shot, r.width, counts[c], name, c)
			}
		}
		if fits := parsePage(t, r.dom).fits; fits != "true" {
			t.Errorf("at %d px the page is wider than the window (data-fits %q)", r.width, fits)
		}
	}
}

// seriesOrZeros is a history series as the page reads it: a missing one
// is all zeros.
func seriesOrZeros(s []int64) []int64 {
	if len(s) == 0 {
		return make([]int64, history.Slots)
	}
	return s
}

// distinctY counts the distinct heights of a polyline's points.
func distinctY(points string) int {
	ys := map[string]bool{}
	for _, p := range strings.Fields(points) {
		_, y, _ := strings.Cut(p, ",")
		ys[y] = true
	}
	return len(ys)
}

// futureStatusServer serves the page and JSON of the status at url with
// fields the page does not know added (as a newer plugin, or another
// feature, would add them), and returns its URL.
func futureStatusServer(t *testing.T, url string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query := "?format=json"
		if r.URL.Query().Get("history") == "0" {
			query += "&history=0"
		}
		var status map[string]any
		resp, err := http.Get(url + query) // not httpGet: this is not the test's goroutine
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&status)
			resp.Body.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		app := status["apps"].([]any)[0].(map[string]any)
		app["shard_group"], app["upstream_zones"] = "blue", []string{"eu-1"}
		target := app["targets"].([]any)[0].(map[string]any)
		target["source"], target["zone"] = "srv:_pg._tcp.db.internal", map[string]string{"name": "a"}
		out, _ := json.Marshal(status)
		if r.URL.Query().Get("format") == "json" {
			_ = writeJSON(w, out)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, statusPageHead+string(out)+statusPageTail)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// checkUnknownFields checks that the page showed the unknown fields as
// plain "name value" items, rather than dropping them or failing.
func checkUnknownFields(t *testing.T, run *chromiumRun) {
	t.Helper()
	page := parsePage(t, run.dom)
	if page.refreshes == "" || page.refreshes == "0" {
		t.Errorf("the page's script failed on unknown fields (data-refreshes %q):\n%s", page.refreshes, run.dom)
	}
	for _, want := range []string{"shard group blue", "upstream zones eu-1"} {
		if !strings.Contains(page.sections["five-thousand"], want) {
			t.Errorf("app section %q does not show %q", page.sections["five-thousand"], want)
		}
	}
	for _, row := range page.rows {
		if strings.Contains(row.text, "source srv:_pg._tcp.db.internal") && strings.Contains(row.text, `zone {"name":"a"}`) {
			return
		}
	}
	t.Errorf("no target row shows its unknown fields source and zone: %v", page.rows)
}

// colourCounts decodes a PNG and counts its pixels by colour.
func colourCounts(t *testing.T, path string) map[color.RGBA]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	return counts
}
