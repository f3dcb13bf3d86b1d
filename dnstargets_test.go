package tcpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/discovery"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/discovery/dnstest"
)

// Tests of SPEC.md Part 2, "Targets from DNS": a real DNS server on
// loopback (UDP and TCP), backends on distinct 127.0.0.x addresses.

// backendsOnOnePort starts one backend per name on 127.0.0.2, .3, ...,
// all on the same port, as the records of a dns: target share theirs.
func backendsOnOnePort(t *testing.T, names ...string) ([]*backend, int) {
	t.Helper()
	ip := func(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i) }
	for try := 0; try < 50; try++ {
		port := freePort(t)
		var probes []net.Listener
		for i := range names {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip(i), port))
			if err != nil {
				break
			}
			probes = append(probes, ln)
		}
		free := len(probes) == len(names)
		for _, ln := range probes {
			ln.Close()
		}
		if !free {
			continue
		}
		bs := make([]*backend, len(names))
		for i, n := range names {
			bs[i] = newBackendOn(t, n, "tcp", fmt.Sprintf("%s:%d", ip(i), port))
		}
		return bs, port
	}
	t.Fatal("no port free on all of 127.0.0.2..")
	return nil, 0
}

// aRecords are zone lines giving name one A record per IP.
func aRecords(name string, ips ...string) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = fmt.Sprintf("%s 1 IN A %s", name, ip)
	}
	return out
}

// dnsApp is an app whose targets include DNS ones, asking srv.
func dnsApp(name string, port int, srv *dnstest.Server, targets []any, fields map[string]any) app {
	a := app{"name": name, "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": targets,
		"resolvers": []string{srv.Addr}, "dns_refresh": "50ms",
		"health_checks": map[string]any{"interval": "100ms", "timeout": "500ms"}}
	for k, v := range fields {
		a[k] = v
	}
	return a
}

// rowsOf returns the status rows of an app of the running config.
func rowsOf(t testing.TB, name string) []targetStatus {
	t.Helper()
	a, err := tcpproxyApp(caddy.ActiveContext())
	if err != nil || a == nil {
		t.Fatalf("no tcpproxy app running: %v", err)
	}
	for _, a := range a.status(statusOptions{}) {
		if a.Name == name {
			return a.Targets
		}
	}
	t.Fatalf("no app %q running", name)
	return nil
}

// rowAddrs returns the addresses of rows, in order.
func rowAddrs(rows []targetStatus) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Address
	}
	return out
}

func waitForRows(t testing.TB, name string, want ...string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("app %s to have targets %v", name, want), func() bool {
		return slices.Equal(rowAddrs(rowsOf(t, name)), want)
	})
}

// traffic opens connections to addr one after another, each echoing a
// message through, from start until stop is called (at most 20,000
// connections or 60s). stop returns the connections that worked and the
// errors of those that did not.
type traffic struct {
	ok      atomic.Int64
	done    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	errs    []string
}

func startTraffic(addr string) *traffic {
	tr := &traffic{done: make(chan struct{})}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
			select {
			case <-tr.done:
				return
			default:
			}
			if err := echoOnce(addr, fmt.Sprintf("m%d", i)); err != nil {
				tr.errs = append(tr.errs, err.Error())
			} else {
				tr.ok.Add(1)
			}
		}
	}()
	return tr
}

// waitOK waits for n more connections that worked.
func (tr *traffic) waitOK(t testing.TB, n int64) {
	t.Helper()
	target := tr.ok.Load() + n
	waitFor(t, 20*time.Second, fmt.Sprintf("%d more proxied connections", n), func() bool { return tr.ok.Load() >= target })
}

func (tr *traffic) stop() (ok int64, errs []string) {
	tr.stopped.Do(func() { close(tr.done) })
	tr.wg.Wait()
	return tr.ok.Load(), tr.errs
}

// echoOnce connects, reads the greeting, and checks that msg comes back.
func echoOnce(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		return fmt.Errorf("greeting: %v", err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		return fmt.Errorf("echo: %q, %v", got, err)
	}
	return nil
}

// connTo dials addr until the backend named name answers (at most 50
// tries) and returns that connection, its greeting read.
func connTo(t testing.TB, addr, name string) (net.Conn, *bufio.Reader) {
	t.Helper()
	for range 50 {
		c := dial(t, addr)
		r := bufio.NewReader(c)
		if got, _ := r.ReadString('\n'); got == name+"\n" {
			return c, r
		}
		c.Close()
	}
	t.Fatalf("50 connections to %s, none reached %s", addr, name)
	return nil, nil
}

// echoThrough sends msg on c and checks it comes back through r.
func echoThrough(t testing.TB, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

func TestDNSRecordsAddedAndRemovedWhileTrafficFlows(t *testing.T) {
	bs, port := backendsOnOnePort(t, "b2", "b3", "b4")
	srv := dnstest.Start(t, "127.0.0.1")
	srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.2", "127.0.0.3")...)
	listen := freePort(t)
	spec := fmt.Sprintf("dns:db.test.:%d", port)
	admin := loadConfigWithAdmin(t, proxyConfig(dnsApp("dyn", listen, srv, []any{spec}, nil)))
	addr := hostPort(listen)

	// Start waited for the first answer: the records are targets at once.
	rows := rowsOf(t, "dyn")
	if got := rowAddrs(rows); !slices.Equal(got, addrs(bs[0], bs[1])) {
		t.Fatalf("right after start the targets are %v, want %v", got, addrs(bs[0], bs[1]))
	}
	for _, r := range rows {
		if r.Source != spec || r.Weight != 1 || r.Backup {
			t.Errorf("row %+v: want source %q, weight 1, not a backup", r, spec)
		}
	}
	stream, streamR := connTo(t, addr, "b2")
	defer stream.Close()
	if got := scrapeMetrics(t, admin).seriesOf("target", bs[0].addr); len(got) == 0 {
		t.Fatalf("no metrics series for the record %s", bs[0].addr)
	}

	tr := startTraffic(addr)
	defer tr.stop()
	tr.waitOK(t, 10)
	srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.2", "127.0.0.3", "127.0.0.4")...)
	waitForRows(t, "dyn", addrs(bs...)...)
	t2, t3, t4 := lookupTarget(t, "dyn", bs[0].addr), lookupTarget(t, "dyn", bs[1].addr), lookupTarget(t, "dyn", bs[2].addr)
	waitFor(t, 10*time.Second, "the added record to get connections", func() bool { return t4.total.Load() > 0 })

	srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.3", "127.0.0.4")...)
	waitForRows(t, "dyn", addrs(bs[1], bs[2])...)
	tr.waitOK(t, 10) // a pick made just before the change may still dial b2
	removedGot := t2.total.Load()
	before3, before4 := t3.total.Load(), t4.total.Load()
	tr.waitOK(t, 40)
	if n := t2.total.Load(); n != removedGot {
		t.Errorf("the removed record got %d new connections", n-removedGot)
	}
	if t3.total.Load() == before3 || t4.total.Load() == before4 {
		t.Errorf("after the removal not both remaining records got connections")
	}
	ok, errs := tr.stop()
	t.Logf("%d connections while records were added and removed, %d failed", ok+int64(len(errs)), len(errs))
	if len(errs) > 0 {
		t.Errorf("%d of %d connections failed while records came and went: %v", len(errs), ok+int64(len(errs)), errs[:min(len(errs), 5)])
	}

	// The stream to the removed record flows on; its series are gone.
	for i := range 5 {
		echoThrough(t, stream, streamR, fmt.Sprintf("still-%d", i))
	}
	if got := scrapeMetrics(t, admin).seriesOf("target", bs[0].addr); len(got) > 0 {
		t.Errorf("metrics of the removed record remain: %v", got)
	}
	if got := scrapeMetrics(t, admin).seriesOf("target", bs[1].addr); len(got) == 0 {
		t.Errorf("no metrics series for the remaining record %s", bs[1].addr)
	}
}

// shortDNSTimeouts makes lookups to a silent server fail fast.
func shortDNSTimeouts(t *testing.T) {
	q, l := dnsQueryTimeout, dnsLookupTimeout
	dnsQueryTimeout, dnsLookupTimeout = 100*time.Millisecond, 500*time.Millisecond
	t.Cleanup(func() { dnsQueryTimeout, dnsLookupTimeout = q, l })
}

// dnsLogs returns the log entries with message msg from the tcpproxy
// logger at level about app.
func dnsLogs(t *testing.T, path, msg, level, app string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range logEntries(t, path, msg) {
		if e["logger"] == "tcpproxy" && e["level"] == level && e["app"] == app {
			out = append(out, e)
		}
	}
	return out
}

func TestDNSFailuresKeepTheLastGoodSetAndAnEmptyAnswerEmptiesIt(t *testing.T) {
	shortDNSTimeouts(t)
	bs, port := backendsOnOnePort(t, "b2", "b3")
	srv := dnstest.Start(t, "127.0.0.1")
	srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.2", "127.0.0.3")...)
	listen := freePort(t)
	spec := fmt.Sprintf("dns:db.test.:%d", port)
	logs := filepath.Join(t.TempDir(), "caddy.log")
	if err := tryLoadWith(proxyConfig(dnsApp("keep", listen, srv, []any{spec}, nil)), withDebugLogFile(logs)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	addr := hostPort(listen)
	waitForRows(t, "keep", addrs(bs...)...)

	const failed, recovered = "DNS lookup failed: keeping the last good targets", "DNS lookup recovered"
	for streak, fail := range []struct {
		name      string
		fail, fix func()
	}{
		{"SERVFAIL", func() { srv.SetMode(dnstest.ServFail) }, func() { srv.SetMode(dnstest.Answer) }},
		{"timeout", func() { srv.SetMode(dnstest.Drop) }, func() { srv.SetMode(dnstest.Answer) }},
		{"NXDOMAIN", func() { srv.Remove("db.test.") }, func() {
			srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.2", "127.0.0.3")...)
		}},
	} {
		fail.fail()
		waitFor(t, 20*time.Second, fail.name+": three failed lookups", func() bool {
			return len(dnsLogs(t, logs, failed, "debug", "keep")) >= 3*(streak+1)
		})
		if got := rowAddrs(rowsOf(t, "keep")); !slices.Equal(got, addrs(bs...)) {
			t.Fatalf("%s: the targets became %v, want the last good set %v", fail.name, got, addrs(bs...))
		}
		seen := map[string]bool{}
		for range 4 {
			seen[echo(t, addr, "x")] = true
		}
		if !seen["b2"] || !seen["b3"] {
			t.Errorf("%s: 4 connections reached %v, want both records", fail.name, seen)
		}
		warns := dnsLogs(t, logs, failed, "warn", "keep")
		if len(warns) != streak+1 {
			t.Fatalf("%s: %d warnings after %d failure streaks, want one per streak", fail.name, len(warns), streak+1)
		}
		if w := warns[streak]; w["source"] != spec || w["records"] != 2.0 || w["error"] == "" {
			t.Errorf("%s: warning %v: want the source, the 2 records kept and the error", fail.name, w)
		}
		fail.fix()
		waitFor(t, 10*time.Second, fail.name+": the recovery", func() bool {
			return len(dnsLogs(t, logs, recovered, "info", "keep")) == streak+1
		})
	}

	// A successful answer without records empties the set.
	srv.Set(t, "db.test.")
	waitForRows(t, "keep")
	mustBeClosed(t, addr)
	changes := dnsLogs(t, logs, "DNS targets changed", "info", "keep")
	if last := changes[len(changes)-1]; last["records"] != 0.0 || last["removed"] != 2.0 || last["source"] != spec {
		t.Errorf("last change logged: %v; want 0 records, 2 removed, source %s", last, spec)
	}
	srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.3")...)
	waitForRows(t, "keep", bs[1].addr)
	if name := greeting(t, addr); name != "b3" {
		t.Errorf("the record back in DNS: %s answered", name)
	}
}

func TestSRVPrioritiesMakeBackupsAndWeightsShares(t *testing.T) {
	a := newBackendOn(t, "a", "tcp", "127.0.0.2:0")
	b := newBackendOn(t, "b", "tcp", "127.0.0.3:0")
	c := newBackendOn(t, "c", "tcp", "127.0.0.4:0")
	static := newBackendOn(t, "s", "tcp", "127.0.0.5:0")
	portOf := func(b *backend) int { return b.ln.Addr().(*net.TCPAddr).Port }
	srv := dnstest.Start(t, "127.0.0.1")
	srvRecords := func(weightA int) {
		srv.Set(t, "_db._tcp.test.",
			fmt.Sprintf("_db._tcp.test. 1 IN SRV 10 %d %d a.test.", weightA, portOf(a)),
			fmt.Sprintf("_db._tcp.test. 1 IN SRV 10 1 %d b.test.", portOf(b)),
			fmt.Sprintf("_db._tcp.test. 1 IN SRV 20 0 %d c.test.", portOf(c)))
	}
	srvRecords(3)
	srv.Set(t, "a.test.", "a.test. 1 IN A 127.0.0.2")
	srv.Set(t, "b.test.", "b.test. 1 IN A 127.0.0.3")
	srv.Set(t, "c.test.", "c.test. 1 IN A 127.0.0.4")
	listen := freePort(t)
	const spec = "srv:_db._tcp.test."
	admin := loadConfigWithAdmin(t, proxyConfig(dnsApp("srv", listen, srv,
		[]any{spec, weighted(static.addr, 1, true)}, nil)))
	addr := hostPort(listen)

	type row struct {
		addr, source   string
		weight         int
		backup, health bool
	}
	var got []row
	for _, r := range getStatus(t, admin).Apps[0].Targets {
		got = append(got, row{r.Address, r.Source, r.Weight, r.Backup, r.Healthy})
	}
	want := []row{
		{static.addr, "", 1, true, true}, // static targets come first
		{a.addr, spec, 3, false, true},   // the port is the SRV record's
		{b.addr, spec, 1, false, true},
		{c.addr, spec, 1, true, true}, // priority 20: a backup; weight 0 counts as 1
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("status rows\n%v\nwant\n%v", got, want)
	}
	counts := map[string]int{}
	for range 8 {
		counts[greeting(t, addr)]++
	}
	if counts["a"] != 6 || counts["b"] != 2 {
		t.Errorf("8 connections: %v; want a 6 and b 2 (SRV weights 3 and 1), none to the backups", counts)
	}

	srvRecords(5) // a new weight is taken without a reload
	waitFor(t, 10*time.Second, "a's new weight", func() bool { return lookupTarget(t, "srv", a.addr).status().Weight == 5 })

	a.stop()
	b.stop()
	counts = map[string]int{}
	for range 8 {
		counts[echo(t, addr, "x")]++
	}
	if counts["c"] == 0 || counts["s"] == 0 || counts["c"]+counts["s"] != 8 {
		t.Errorf("primaries dead: 8 connections went to %v; want the SRV backup c and the static backup s only", counts)
	}
}

func TestReloadKeepsDiscoveredTargetsHealthAndServesThemAtOnce(t *testing.T) {
	shortDNSTimeouts(t)
	bs, port := backendsOnOnePort(t, "b2", "b3")
	bs[1].stop()
	srv := dnstest.Start(t, "127.0.0.1")
	srv.Set(t, "db.test.", aRecords("db.test.", "127.0.0.2", "127.0.0.3")...)
	listen := freePort(t)
	spec := fmt.Sprintf("dns:db.test.:%d", port)
	cfg := func(dialTimeout string) map[string]any {
		return proxyConfig(dnsApp("reload", listen, srv, []any{spec}, map[string]any{"dial_timeout": dialTimeout,
			"health_checks": map[string]any{"interval": "1h", "down_interval": "1h", "timeout": "1s"}}))
	}
	loadConfig(t, cfg("2s"))
	dead := lookupTarget(t, "reload", bs[1].addr)
	waitFor(t, 10*time.Second, "the first round to mark b3 down", func() bool { return !dead.healthy.Load() })
	before := dead.status()

	// The new config's lookups all fail: it serves the records the old
	// config had, with their health, from its first connection.
	srv.SetMode(dnstest.ServFail)
	bs[1].restart() // up again, but the next probe is an hour away
	if err := tryLoad(cfg("3s")); err != nil {
		t.Fatal(err)
	}
	if got := rowAddrs(rowsOf(t, "reload")); !slices.Equal(got, addrs(bs...)) {
		t.Fatalf("right after the reload the targets are %v, want %v", got, addrs(bs...))
	}
	if lookupTarget(t, "reload", bs[1].addr) != dead {
		t.Fatal("the reload replaced b3's shared state")
	}
	after := dead.status()
	if after.Healthy || after.LastCheck != before.LastCheck || after.Source != spec {
		t.Fatalf("b3 across the reload: before %+v, after %+v", before, after)
	}
	for range 6 {
		if name := greeting(t, hostPort(listen)); name != "b2" {
			t.Fatalf("%s answered; want b2 only (b3 is still marked down)", name)
		}
	}
	q := srv.Queries()
	waitFor(t, 10*time.Second, "failed lookups by the new config", func() bool { return srv.Queries() >= q+6 })
	if got := rowAddrs(rowsOf(t, "reload")); !slices.Equal(got, addrs(bs...)) {
		t.Errorf("after failed lookups the targets are %v, want %v", got, addrs(bs...))
	}
}

// A name with 1,000 addresses does not fit a UDP answer: the lookup goes
// on over TCP, and every address is a target.
func TestDNSThousandRecordsComeOverTCP(t *testing.T) {
	srv := dnstest.Start(t, "127.0.0.1")
	ips := make([]string, 1000)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.1.%d.%d", i>>8, i&255)
	}
	srv.Set(t, "big.test.", aRecords("big.test.", ips...)...)
	listen := freePort(t)
	loadConfig(t, proxyConfig(dnsApp("big", listen, srv, []any{"dns:big.test.:9"},
		map[string]any{"health_checks": map[string]any{"disabled": true}, "dns_refresh": "300ms"})))
	if n := len(rowsOf(t, "big")); n != 1000 {
		t.Fatalf("%d targets after start, want 1000", n)
	}
	if srv.TCPQueries.Load() == 0 {
		t.Errorf("no query came over TCP")
	}
	kept := lookupTarget(t, "big", "127.1.0.1:9")
	ips[0] = "127.2.0.0"
	srv.Set(t, "big.test.", aRecords("big.test.", ips...)...)
	waitFor(t, 10*time.Second, "the changed record", func() bool {
		rows := rowsOf(t, "big")
		return len(rows) == 1000 && slices.Contains(rowAddrs(rows), "127.2.0.0:9") && !slices.Contains(rowAddrs(rows), "127.1.0.0:9")
	})
	if lookupTarget(t, "big", "127.1.0.1:9") != kept {
		t.Error("a record kept by the change got a new state")
	}
}

// watchers counts the goroutines of DNS watchers.
func watchers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "discovery.(*Watcher).watch(")
}

func TestDNSLookupsEndWithTheirConfig(t *testing.T) {
	first, second := dnstest.Start(t, "127.0.0.1"), dnstest.Start(t, "127.0.0.1")
	for _, s := range []*dnstest.Server{first, second} {
		s.Set(t, "db.test.", aRecords("db.test.", "127.0.0.2")...)
	}
	listen := freePort(t)
	cfg := func(srv *dnstest.Server) map[string]any {
		return proxyConfig(dnsApp("ends", listen, srv, []any{"dns:db.test.:9", "srv:_x._tcp.test."}, nil))
	}
	loadConfig(t, cfg(first))
	if n := watchers(); n != 2 {
		t.Fatalf("%d watcher goroutines, want one per DNS target", n)
	}
	waitFor(t, 10*time.Second, "refreshes", func() bool { return first.Queries() >= 10 })
	if err := tryLoad(cfg(second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "refreshes of the new config", func() bool { return second.Queries() >= 10 })
	q := first.Queries() // (after a moment: a query sent as the old watcher stopped may arrive late)
	waitFor(t, 10*time.Second, "more refreshes of the new config", func() bool { return second.Queries() >= 30 })
	if got := first.Queries(); got != q {
		t.Errorf("the old config's watcher asked %d more queries after the reload", got-q)
	}
	if n := watchers(); n != 2 {
		t.Errorf("%d watcher goroutines after a reload, want 2", n)
	}
	if err := tryLoad(proxyConfig()); err != nil {
		t.Fatal(err)
	}
	if n := watchers(); n != 0 {
		t.Errorf("%d watcher goroutines with no DNS target loaded", n)
	}
}

func TestDNSSettingsAdaptAlikeAndBadOnesAreRejected(t *testing.T) {
	fields := `"targets": ["127.0.0.1:9001", "srv:_pg._tcp.db.internal", {"address": "dns:db.internal:5432", "weight": 2, "backup": true}],
		"resolvers": ["10.0.0.2:53", "10.0.0.3"], "dns_refresh": "10s"`
	lines := "\t\t\ttargets srv:_pg._tcp.db.internal\n\t\t\ttarget dns:db.internal:5432 weight 2 backup\n" +
		"\t\t\tresolvers 10.0.0.2:53\n\t\t\tresolvers 10.0.0.3\n\t\t\tdns_refresh 10s\n"
	var got []string
	for _, f := range []configFormat{formatNative, formatPlain, formatCaddyfile} {
		input := webApp(t, fields)
		if f == formatCaddyfile {
			input = webBlock(lines)
		}
		app, err := decodeConfig(f, input)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got = append(got, appJSON(t, app))
	}
	if got[0] != got[1] || got[0] != got[2] {
		t.Fatalf("formats differ:\nnative    %s\nplain     %s\nCaddyfile %s", got[0], got[1], got[2])
	}
	if d := (Discovery{}).withDefaults(); time.Duration(d.DNSRefresh) != 30*time.Second {
		t.Errorf("default dns_refresh %s, want 30s", time.Duration(d.DNSRefresh))
	}
	// "dns:53" is the host "dns" at port 53, as before the prefixes.
	if _, err := decodeConfig(formatNative, webApp(t, `"targets": ["dns:53", "srv:5432"]`)); err != nil {
		t.Errorf("targets dns:53 and srv:5432 (plain hosts): %v", err)
	}

	testBadValues(t, []badValue{
		{`"targets": ["srv:"]`, "\t\t\ttargets srv:\n", []string{"targets", `"srv:"`, "no name"}},
		{`"targets": ["srv:_pg._tcp.db:5432"]`, "\t\t\ttargets srv:_pg._tcp.db:5432\n", []string{"targets", `"srv:_pg._tcp.db:5432"`, "has a port"}},
		{`"targets": ["srv:bad..name"]`, "\t\t\ttargets srv:bad..name\n", []string{"targets", `"srv:bad..name"`, "empty label"}},
		{`"targets": ["dns:db.internal"]`, "\t\t\ttargets dns:db.internal\n", []string{"targets", `"dns:db.internal"`, "dns:<host>:<port>"}},
		{`"targets": ["dns:db.internal:0"]`, "\t\t\ttargets dns:db.internal:0\n", []string{"targets", `"dns:db.internal:0"`, `port "0"`}},
		{`"targets": ["dns::5432"]`, "\t\t\ttargets dns::5432\n", []string{"targets", `"dns::5432"`, "no host"}},
		{`"targets": ["dns:db_-.internal:80"]`, "\t\t\ttargets dns:db_-.internal:80\n", []string{"targets", `"dns:db_-.internal:80"`, "'-'"}},
		{`"targets": [{"address": "srv:_pg._tcp.db", "weight": 2}]`, "\t\t\ttarget srv:_pg._tcp.db weight 2\n",
			[]string{"targets", `"srv:_pg._tcp.db"`, "SRV record gives its own weight"}},
		{`"targets": [{"address": "srv:_pg._tcp.db", "backup": true}]`, "\t\t\ttarget srv:_pg._tcp.db backup\n",
			[]string{"targets", `"srv:_pg._tcp.db"`, "priority"}},
		{`"targets": ["srv:_pg._tcp.db", "srv:_pg._tcp.db"]`, "\t\t\ttargets srv:_pg._tcp.db srv:_pg._tcp.db\n",
			[]string{"targets", `"srv:_pg._tcp.db" is listed twice`}},
		{`"resolvers": ["dns.google"]`, "\t\t\tresolvers dns.google\n", []string{"resolvers", `"dns.google"`, "IP address"}},
		{`"resolvers": ["10.0.0.2:0"]`, "\t\t\tresolvers 10.0.0.2:0\n", []string{"resolvers", `"10.0.0.2:0"`, "port 0"}},
		{`"resolvers": ["10.0.0.2:99999"]`, "\t\t\tresolvers 10.0.0.2:99999\n", []string{"resolvers", `"10.0.0.2:99999"`}},
		{`"resolvers": ["10.0.0.2", "10.0.0.2:53"]`, "\t\t\tresolvers 10.0.0.2 10.0.0.2:53\n", []string{"resolvers", `"10.0.0.2:53" is listed twice`}},
		{`"resolvers": "10.0.0.2"`, "", []string{"resolvers", "want a list"}},
		{`"resolvers": [""]`, "", []string{"resolvers", `resolver "" is empty`}},
		{`"dns_refresh": "-1s"`, "\t\t\tdns_refresh -1s\n", []string{"dns_refresh", "must be positive", "-1s"}},
		{`"dns_refresh": "soon"`, "\t\t\tdns_refresh soon\n", []string{"dns_refresh", "soon"}},
	})
}

func TestStandaloneHandlerRefusesDNSTargets(t *testing.T) {
	port := freePort(t)
	cfg := fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},
		"logging":{"logs":{"default":{"level":"ERROR"}}},
		"apps":{"layer4":{"servers":{"own":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[
			{"handler":"tcpproxy","app":"mine","targets":["127.0.0.1:9","srv:_pg._tcp.db.internal"]}]}]}}}}}`, port)
	err := caddy.Load([]byte(cfg), true)
	t.Cleanup(func() { _ = caddy.Stop() })
	assertErrorMentions(t, err, `app "mine"`, "targets", `"srv:_pg._tcp.db.internal"`, "tcpproxy app")
}

// records1000 returns 1,000 records of port 80 on 10.0.x.y, the first
// being first.
func records1000(first string) []discovery.Record {
	recs := make([]discovery.Record, 1000)
	recs[0] = discovery.Record{Addr: first, Weight: 1}
	for i := 1; i < len(recs); i++ {
		recs[i] = discovery.Record{Addr: fmt.Sprintf("10.0.%d.%d:80", i>>8, i&255), Weight: 1}
	}
	return recs
}

// BenchmarkDNSChangeOf1000Records is what a refresh that changed one
// record of a 1,000-record set costs the app: the diff and log line, the
// new member list, the balancer's members, one target state acquired and
// one released (with its metrics series). An unchanged refresh costs the
// app nothing: the watcher compares without calling it (see the
// discovery package's BenchmarkRefreshUnchanged1000).
func BenchmarkDNSChangeOf1000Records(b *testing.B) {
	const spec = "dns:big.test:80"
	u := Upstreams{Targets: []TargetConfig{{Address: spec}}}.withDefaults()
	set, err := newTargetSet("bench-dns", u, new(atomic.Uint64))
	if err != nil {
		b.Fatal(err)
	}
	defer set.release()
	change := set.watchHandler(zap.NewNop()).Change
	sets := [2][]discovery.Record{records1000("10.1.0.1:80"), records1000("10.1.0.2:80")}
	change(spec, sets[1])
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		change(spec, sets[i%2])
		i++
	}
	if n := len(set.current()); n != 1000 {
		b.Fatalf("%d members, want 1000", n)
	}
}
