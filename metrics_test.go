package tcpproxy

import (
	"bufio"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	// The admin API's /metrics endpoint (admin.api.metrics).
	_ "github.com/caddyserver/caddy/v2/modules/metrics"
)

// Tests of SPEC.md behaviour 11: the metrics as a Prometheus server sees
// them, scraped from the admin /metrics endpoint and parsed.

// metricFamilies are the names and types of the tcpproxy metrics.
var metricFamilies = map[string]dto.MetricType{
	"caddy_tcpproxy_connections_total":           dto.MetricType_COUNTER,
	"caddy_tcpproxy_active_connections":          dto.MetricType_GAUGE,
	"caddy_tcpproxy_bytes_total":                 dto.MetricType_COUNTER,
	"caddy_tcpproxy_target_healthy":              dto.MetricType_GAUGE,
	"caddy_tcpproxy_dial_errors_total":           dto.MetricType_COUNTER,
	"caddy_tcpproxy_dial_duration_seconds":       dto.MetricType_HISTOGRAM,
	"caddy_tcpproxy_rejected_connections_total":  dto.MetricType_COUNTER,
	"caddy_tcpproxy_closed_connections_total":    dto.MetricType_COUNTER,
	"caddy_tcpproxy_connection_duration_seconds": dto.MetricType_HISTOGRAM,
}

// scrape is what a Prometheus server reads from the admin /metrics
// endpoint: the metric families whose names start with caddy_tcpproxy_.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t testing.TB, adminAddr string) scrape {
	t.Helper()
	resp, body := adminRequest(t, "GET", adminAddr, "/metrics", "text/plain")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := scrape{}
	for name, f := range fams {
		if strings.HasPrefix(name, "caddy_tcpproxy_") {
			out[name] = f
		}
	}
	return out
}

// value returns the value of the series of family name with exactly the
// given labels (name, value pairs): a counter's or gauge's value, a
// histogram's sample count. ok is false when there is no such series.
func (s scrape) value(name string, labels ...string) (v float64, ok bool) {
	f := s[name]
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	if len(m.GetLabel())*2 != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		found := false
		for i := 0; i+1 < len(labels); i += 2 {
			if labels[i] == l.GetName() && labels[i+1] == l.GetValue() {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// expectValues checks series values; each key is "family label=value ...".
func (s scrape) expectValues(t testing.TB, want map[string]float64) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fields := strings.Fields(k)
		var labels []string
		for _, kv := range fields[1:] {
			name, val, _ := strings.Cut(kv, "=")
			labels = append(labels, name, val)
		}
		got, ok := s.value(fields[0], labels...)
		if !ok {
			t.Errorf("%s: no such series", k)
		} else if got != want[k] {
			t.Errorf("%s = %v, want %v", k, got, want[k])
		}
	}
}

// seriesOf returns the series of every tcpproxy family that carry the
// label value, as "family{labels}" strings.
func (s scrape) seriesOf(label, value string) []string {
	var out []string
	for name, f := range s {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					out = append(out, name+m.String())
				}
			}
		}
	}
	return out
}

// waitForValue scrapes until the series has the value.
func waitForValue(t testing.TB, adminAddr string, want float64, name string, labels ...string) {
	t.Helper()
	waitFor(t, 10*time.Second, name+" "+strings.Join(labels, " ")+" to be "+itoa(int64(want)), func() bool {
		v, ok := scrapeMetrics(t, adminAddr).value(name, labels...)
		return ok && v == want
	})
}

func TestMetricsCountConnectionsBytesAndFailures(t *testing.T) {
	onBothPaths(t, func(t *testing.T) {
		live := newBackend(t, "live") // greets with "live\n": 5 bytes downstream per connection
		dead := newBackend(t, "dead")
		dead.stop()
		ports := freePorts(t, 3)
		bind := []string{"127.0.0.1"}
		admin := loadConfigWithAdmin(t, proxyConfig(
			app{"name": "metrics", "ports": ports[:1], "bind": bind, "targets": addrs(live)},
			app{"name": "metrics-max", "ports": ports[1:2], "bind": bind, "targets": addrs(live), "max_connections": 1},
			// Active checks off: the first connection finds the dead target
			// healthy and fails to dial it, the second finds none healthy.
			app{"name": "metrics-dead", "ports": ports[2:], "bind": bind, "targets": []string{dead.addr},
				"health_checks": map[string]any{"disabled": true}},
		))

		const conns, size = 10, 3000
		for i := 0; i < conns; i++ {
			echo(t, hostPort(ports[0]), strings.Repeat("m", size))
		}
		// The byte counts are added when a connection ends, before its
		// active count drops.
		l := []string{"app", "metrics", "target", live.addr}
		waitForValue(t, admin, 0, "caddy_tcpproxy_active_connections", l...)

		s := scrapeMetrics(t, admin)
		for name, typ := range metricFamilies {
			if f, ok := s[name]; !ok {
				t.Errorf("metric %s not exported", name)
			} else if f.GetType() != typ {
				t.Errorf("metric %s is a %v, want a %v", name, f.GetType(), typ)
			}
		}
		for name := range s {
			if _, ok := metricFamilies[name]; !ok {
				t.Errorf("unexpected metric %s", name)
			}
		}
		target := "app=metrics target=" + live.addr
		s.expectValues(t, map[string]float64{
			"caddy_tcpproxy_connections_total " + target:                                     conns,
			"caddy_tcpproxy_bytes_total direction=upstream " + target:                        conns * size,
			"caddy_tcpproxy_bytes_total direction=downstream " + target:                      conns * (size + 5), // "live\n" greeting + echo
			"caddy_tcpproxy_active_connections " + target:                                    0,
			"caddy_tcpproxy_target_healthy " + target:                                        1,
			"caddy_tcpproxy_dial_errors_total " + target:                                     0,
			"caddy_tcpproxy_dial_duration_seconds " + target:                                 conns,
			"caddy_tcpproxy_rejected_connections_total app=metrics reason=dial_failed":       0,
			"caddy_tcpproxy_rejected_connections_total app=metrics reason=no_healthy_target": 0,
			"caddy_tcpproxy_rejected_connections_total app=metrics reason=max_connections":   0,
			"caddy_tcpproxy_closed_connections_total app=metrics reason=normal":              conns,
			"caddy_tcpproxy_closed_connections_total app=metrics reason=idle_timeout":        0,
			"caddy_tcpproxy_connection_duration_seconds app=metrics":                         conns,
		})

		// One connection held open is one active connection.
		c := dial(t, hostPort(ports[0]))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		waitForValue(t, admin, 1, "caddy_tcpproxy_active_connections", l...)
		c.Close()
		waitForValue(t, admin, 0, "caddy_tcpproxy_active_connections", l...)

		// Beyond max_connections a connection is rejected and counted.
		held := dial(t, hostPort(ports[1]))
		defer held.Close()
		if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		mustBeClosed(t, hostPort(ports[1]))

		// A dead target: one failed dial, then no healthy target.
		mustBeClosed(t, hostPort(ports[2]))
		mustBeClosed(t, hostPort(ports[2]))

		deadTarget := "app=metrics-dead target=" + dead.addr
		scrapeMetrics(t, admin).expectValues(t, map[string]float64{
			"caddy_tcpproxy_connections_total " + target:                                          conns + 1,
			"caddy_tcpproxy_dial_duration_seconds " + target:                                      conns + 1,
			"caddy_tcpproxy_connections_total app=metrics-max target=" + live.addr:                1,
			"caddy_tcpproxy_active_connections app=metrics-max target=" + live.addr:               1,
			"caddy_tcpproxy_rejected_connections_total app=metrics-max reason=max_connections":    1,
			"caddy_tcpproxy_rejected_connections_total app=metrics-max reason=no_healthy_target":  0,
			"caddy_tcpproxy_dial_errors_total " + deadTarget:                                      1,
			"caddy_tcpproxy_target_healthy " + deadTarget:                                         0,
			"caddy_tcpproxy_connections_total " + deadTarget:                                      0,
			"caddy_tcpproxy_dial_duration_seconds " + deadTarget:                                  0,
			"caddy_tcpproxy_rejected_connections_total app=metrics-dead reason=dial_failed":       1,
			"caddy_tcpproxy_rejected_connections_total app=metrics-dead reason=no_healthy_target": 1,
			"caddy_tcpproxy_rejected_connections_total app=metrics-dead reason=max_connections":   0,
		})
	})
}

func TestMetricsSurviveReloadsAndRemovedTargetsDisappear(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	cfg := func(targets ...*backend) any {
		return proxyConfig(app{"name": "reloaded", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(targets...)})
	}
	admin := loadConfigWithAdmin(t, cfg(a, b))
	for i := 0; i < 4; i++ {
		echo(t, hostPort(port), "x")
	}
	labelsA := []string{"app", "reloaded", "target", a.addr}
	labelsB := []string{"app", "reloaded", "target", b.addr}
	waitForValue(t, admin, 0, "caddy_tcpproxy_active_connections", labelsA...)
	waitForValue(t, admin, 0, "caddy_tcpproxy_active_connections", labelsB...)
	want := map[string]float64{
		"caddy_tcpproxy_connections_total app=reloaded target=" + a.addr:              2,
		"caddy_tcpproxy_connections_total app=reloaded target=" + b.addr:              2,
		"caddy_tcpproxy_bytes_total direction=upstream app=reloaded target=" + a.addr: 2,
	}
	scrapeMetrics(t, admin).expectValues(t, want)

	// The same config twice (loads are forced, so each is a real reload):
	// registering the collectors into each new registry is no error, and
	// the values go on.
	for i := 0; i < 2; i++ {
		if err := tryLoadWith(cfg(a, b), withAdmin(admin)); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		scrapeMetrics(t, admin).expectValues(t, want)
	}
	for i := 0; i < 2; i++ {
		echo(t, hostPort(port), "x")
	}
	waitForValue(t, admin, 3, "caddy_tcpproxy_connections_total", labelsA...)
	waitForValue(t, admin, 3, "caddy_tcpproxy_connections_total", labelsB...)

	// b removed: its series are gone, a's values are kept.
	if err := tryLoadWith(cfg(a), withAdmin(admin)); err != nil {
		t.Fatalf("reload without b: %v", err)
	}
	s := scrapeMetrics(t, admin)
	if left := s.seriesOf("target", b.addr); len(left) > 0 {
		t.Errorf("removed target still reported: %v", left)
	}
	s.expectValues(t, map[string]float64{
		"caddy_tcpproxy_connections_total app=reloaded target=" + a.addr: 3,
		"caddy_tcpproxy_target_healthy app=reloaded target=" + a.addr:    1,
	})

	// The app removed: none of its series are left.
	other := freePort(t)
	if err := tryLoadWith(proxyConfig(app{"name": "other", "ports": []int{other}, "bind": []string{"127.0.0.1"},
		"targets": addrs(a)}), withAdmin(admin)); err != nil {
		t.Fatalf("reload without the app: %v", err)
	}
	if left := scrapeMetrics(t, admin).seriesOf("app", "reloaded"); len(left) > 0 {
		t.Errorf("removed app still reported: %v", left)
	}
}

// recordConnection makes the counter updates of one proxied connection
// with one burst each way, as Handler.Handle, Handler.dial and the relay
// do: the metrics and the cumulative counters the history samples.
func recordConnection(t *target) {
	t.m.dialTime.Observe(0.00042)
	t.total.Add(1)
	t.m.connections.Inc()
	t.node.Active.Add(1)
	t.m.active.Inc()
	t.up.Add(4096)
	t.down.Add(65536)
	t.node.Active.Add(-1)
	t.m.active.Dec()
}

func TestMetricsPerConnectionAllocateNothing(t *testing.T) {
	tg := benchTarget(t, "alloc-test")
	if n := testing.AllocsPerRun(1000, func() { recordConnection(tg) }); n != 0 {
		t.Errorf("counter updates of one connection allocate %v times, want 0", n)
	}
}

// BenchmarkMetricsPerConnection is what the counters cost one proxied
// connection: on one goroutine, and from all CPUs at once on one target
// (where the counters' cache lines are contended).
func BenchmarkMetricsPerConnection(b *testing.B) {
	tg := benchTarget(b, "bench")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			recordConnection(tg)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				recordConnection(tg)
			}
		})
	})
}
