package tcpproxy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// examples/grafana-dashboard.json against the metrics the plugin really
// exports: every metric and label its queries use must exist in a scrape
// of the admin /metrics endpoint after traffic.

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	UID        string           `json:"uid"`
	Title      string           `json:"title"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
			Query      any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		RefID        string `json:"refId"`
	} `json:"targets"`
}

var (
	metricName  = regexp.MustCompile(`caddy_tcpproxy_[a-z_]+`)
	byClause    = regexp.MustCompile(`\b(?:by|without) \(([^)]*)\)`)
	matcherSet  = regexp.MustCompile(`\{([^{}]*)\}`)
	matcherName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	labelValues = regexp.MustCompile(`label_values\((?:[^,]*),\s*([a-zA-Z_]+)\)`)
)

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile("examples/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("examples/grafana-dashboard.json: %v", err)
	}
	return d
}

// queries returns every PromQL text of the dashboard: panel targets and
// template variable queries.
func (d dashboard) queries() []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out = append(out, v.Definition)
			if q, ok := v.Query.(map[string]any); ok {
				out = append(out, q["query"].(string))
			}
		}
	}
	return out
}

func TestGrafanaDashboardIsWellFormed(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both", d.UID, d.Title)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %d %q: want a title, queries and the ${datasource} variable", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
				t.Errorf("panel %q: a query without expr or refId", p.Title)
			}
		}
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, q := range d.queries() {
		for _, m := range regexp.MustCompile(`\$([a-z_]+)`).FindAllStringSubmatch(q, -1) {
			if !strings.HasPrefix(m[1], "__") && !slices.Contains(vars, m[1]) {
				t.Errorf("query %q uses $%s, not a variable of the dashboard (%v)", q, m[1], vars)
			}
		}
	}
}

func TestGrafanaDashboardUsesOnlyExportedMetrics(t *testing.T) {
	// Traffic that makes every series move: proxied connections (bytes,
	// dial and connection durations, closes), a failed dial, a rejection.
	live, dead := newBackend(t, "live"), newBackend(t, "dead")
	dead.stop()
	ports := freePorts(t, 2)
	bind := []string{"127.0.0.1"}
	admin := loadConfigWithAdmin(t, proxyConfig(
		app{"name": "dash", "ports": ports[:1], "bind": bind, "targets": addrs(live)},
		app{"name": "dash-dead", "ports": ports[1:], "bind": bind, "targets": addrs(dead),
			"health_checks": map[string]any{"disabled": true}},
	))
	for range 5 {
		echo(t, hostPort(ports[0]), "grafana")
	}
	mustBeClosed(t, hostPort(ports[1]))
	mustBeClosed(t, hostPort(ports[1]))
	s := scrapeMetrics(t, admin)

	// The labels the plugin's series carry, and le for histogram buckets.
	labels := map[string]bool{"le": true}
	for _, f := range s {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
	}
	used := map[string]bool{}
	for _, q := range loadDashboard(t).queries() {
		names := metricName.FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("query %q uses no caddy_tcpproxy_ metric", q)
		}
		for _, name := range names {
			family := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && s[base].GetType() == dto.MetricType_HISTOGRAM {
					family = base
				}
			}
			if _, ok := s[family]; !ok {
				t.Errorf("query %q: metric %s is not exported by the plugin", q, name)
			}
			used[family] = true
		}
		var names2 []string
		for _, m := range byClause.FindAllStringSubmatch(q, -1) {
			for _, l := range strings.Split(m[1], ",") {
				names2 = append(names2, strings.TrimSpace(l))
			}
		}
		for _, set := range matcherSet.FindAllStringSubmatch(q, -1) {
			for _, m := range matcherName.FindAllStringSubmatch(set[1], -1) {
				names2 = append(names2, m[1])
			}
		}
		for _, m := range labelValues.FindAllStringSubmatch(q, -1) {
			names2 = append(names2, m[1])
		}
		for _, l := range names2 {
			if l != "" && !labels[l] {
				t.Errorf("query %q: label %q is on no series of the plugin", q, l)
			}
		}
	}
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			for _, m := range legendLabel.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !labels[m[1]] {
					t.Errorf("panel %q: legend %q uses label %q, on no series of the plugin", p.Title, tg.LegendFormat, m[1])
				}
			}
		}
	}
	// What the dashboard is for: each of these is on it.
	for _, want := range []string{
		"caddy_tcpproxy_connections_total", "caddy_tcpproxy_active_connections", "caddy_tcpproxy_bytes_total",
		"caddy_tcpproxy_target_healthy", "caddy_tcpproxy_rejected_connections_total",
		"caddy_tcpproxy_dial_duration_seconds", "caddy_tcpproxy_closed_connections_total",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
