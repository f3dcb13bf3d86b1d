package tcpproxy

import (
	"bytes"
	"context"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/html"
)

// The status page as an operator sees it: rendered by headless Chromium,
// its script run, its refreshes fetched from the admin API.

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

// runChromium runs headless Chromium on args (a URL and what to do with
// it) and returns its standard output.
func runChromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := chromiumPath(t)
	profile, err := os.MkdirTemp("", "tcpproxy-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--window-size=1100,700",
	}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // its helper processes may hold the pipes
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// pageRow is a target's row in the rendered page.
type pageRow struct {
	class, text string
}

// renderedRows parses the DOM Chromium dumped and returns the target rows
// by address, and the number of refreshes the page's script made.
func renderedRows(t *testing.T, dom []byte) (rows map[string]pageRow, refreshes string) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatalf("parsing the dumped DOM: %v", err)
	}
	rows = map[string]pageRow{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "tr":
				if addr := attr(n, "data-target"); addr != "" {
					rows[addr] = pageRow{class: attr(n, "class"), text: textOf(n)}
				}
			case "body":
				refreshes = attr(n, "data-refreshes")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return rows, refreshes
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

// withBrowsableAdmin serves the admin API on adminAddr so that a browser
// can open the status page by its URL. Browsers send Sec-Fetch-* headers,
// and then Caddy requires an allowed Origin or Referer, which a typed URL or
// a bookmark does not have: the empty origin must be allowed too.
func withBrowsableAdmin(adminAddr string) map[string]any {
	extra := withAdmin(adminAddr)
	extra["admin"].(map[string]any)["origins"] = []string{"", adminAddr}
	return extra
}

// TestStatusPageInChromiumShowsDownTarget renders the page with one app
// whose second target is down. Set TCPPROXY_STATUS_SCREENSHOT to a .png
// path to keep the screenshot (docs/status.png is made this way).
func TestStatusPageInChromiumShowsDownTarget(t *testing.T) {
	chromiumPath(t)
	web1, web2, db := newBackend(t, "web-1"), newBackend(t, "web-2"), newBackend(t, "db")
	ports := freePorts(t, 3)
	bind := []string{"127.0.0.1"}
	admin := hostPort(freePort(t))
	if err := tryLoadWith(proxyConfig(
		app{"name": "five-thousand", "ports": ports[:2], "bind": bind, "targets": addrs(web1, web2),
			"health_checks": map[string]any{"interval": "100ms", "timeout": "500ms"}},
		app{"name": "postgres", "ports": ports[2:], "bind": bind, "targets": addrs(db), "lb_policy": "least_conn"},
	), withBrowsableAdmin(admin)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	for i := 0; i < 6; i++ {
		echo(t, hostPort(ports[i%2]), "hello")
	}
	held := dial(t, hostPort(ports[2]))
	defer held.Close()
	web2.stop()
	waitFor(t, 10*time.Second, "web-2 to be marked down", func() bool {
		return !lookupTarget(t, "five-thousand", web2.addr).healthy.Load()
	})
	waitFor(t, 10*time.Second, "the held connection to be proxied", func() bool {
		return lookupTarget(t, "postgres", db.addr).active.Load() == 1
	})

	// The virtual time budget lets the 2 s refresh run twice; virtual time
	// stands still while a fetch is in flight.
	url := "http://" + admin + "/tcpproxy/"
	dom := runChromium(t, "--virtual-time-budget=5000", "--dump-dom", url)
	rows, refreshes := renderedRows(t, dom)
	if !strings.Contains(string(dom), "listener sockets") {
		t.Errorf("the page does not show the apps' listener mode (\"listener sockets\"):\n%s", dom)
	}
	if refreshes == "" || refreshes == "0" {
		t.Errorf("the page's script never refreshed from the JSON endpoint (data-refreshes %q)", refreshes)
	}
	for _, want := range []struct {
		addr, class, state string
	}{
		{web1.addr, "up", "UP"},
		{web2.addr, "down", "DOWN"},
		{db.addr, "up", "UP"},
	} {
		row, ok := rows[want.addr]
		if !ok {
			t.Errorf("no row for target %s in the rendered page:\n%s", want.addr, dom)
			continue
		}
		if row.class != want.class || !strings.Contains(row.text, want.state) {
			t.Errorf("row of %s: class %q, text %q; want class %q and %s", want.addr, row.class, row.text, want.class, want.state)
		}
	}
	if row := rows[web2.addr]; !strings.Contains(row.text, "refused") {
		t.Errorf("down row %q does not show the last error", row.text)
	}

	shot := os.Getenv("TCPPROXY_STATUS_SCREENSHOT")
	if shot == "" {
		shot = t.TempDir() + "/status.png"
	}
	runChromium(t, "--virtual-time-budget=3000", "--hide-scrollbars", "--screenshot="+shot, url)
	// The screenshot shows rows in the page's colours: green for a target
	// up, red for a target down.
	counts := colourCounts(t, shot)
	for name, c := range map[string]color.RGBA{
		"up row":     {0xe8, 0xf5, 0xe9, 0xff},
		"down row":   {0xff, 0xeb, 0xee, 0xff},
		"DOWN badge": {0xc6, 0x28, 0x28, 0xff},
	} {
		if counts[c] < 100 {
			t.Errorf("screenshot %s: %d pixels of the %s colour %v, want a visible area", shot, counts[c], name, c)
		}
	}
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
