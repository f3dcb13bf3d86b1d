package main

import (
	"fmt"
	"strings"
)

// systems in table order, with the names the table shows.
var systems = []struct{ id, name string }{
	{"direct", "direct (no proxy)"},
	{"baseline", "tcpproxy at BASE_REV"},
	{"plugin", "**tcpproxy (this plugin)**"},
	{"l4proxy", "caddy-l4 `proxy`"},
	{"haproxy", "HAProxy `mode tcp`"},
	{"nginx", "nginx `stream`"},
}

// columns of the table: a metric and how its values are printed.
var columns = []struct{ head, metric, format string }{
	{"bulk up MiB/s", "up_mibps", "%.0f"},
	{"bulk down MiB/s", "down_mibps", "%.0f"},
	{"CPU-s per GiB up", "up_cpu_gib", "%.2f"},
	{"CPU-s per GiB down", "down_cpu_gib", "%.2f"},
	{"conns/s", "conns_ps", "%.0f"},
	{"CPU-s per 10k conns", "conns_cpu_10k", "%.2f"},
	{"rr32 req/s", "rr_reqps", "%.0f"},
	{"rr32 p50 µs", "rr_p50", "%.0f"},
	{"rr32 p99 µs", "rr_p99", "%.0f"},
	{"RSS KiB per idle conn", "idle_rss_kib", "%.1f"},
	{"fds per idle conn", "idle_fds", "%.2f"},
}

// printTable prints the Markdown table: per cell the median, then its
// ratio to direct and to HAProxy in brackets.
func printTable(r results) {
	heads := []string{"system"}
	for _, c := range columns {
		heads = append(heads, c.head)
	}
	fmt.Println("Median of the rounds; in brackets the ratio to direct / to HAProxy.")
	fmt.Println()
	fmt.Println("| " + strings.Join(heads, " | ") + " |")
	fmt.Println(strings.Repeat("| --- ", len(heads)) + "|")
	for _, s := range systems {
		if r[s.id] == nil {
			continue
		}
		cells := []string{s.name}
		for _, c := range columns {
			cells = append(cells, cell(r, s.id, c.metric, c.format))
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	fmt.Println()
}

// cell formats one value with its ratios; "–" where there is nothing.
func cell(r results, sys, metric, format string) string {
	v, ok := r.median(sys, metric)
	if !ok {
		return "–"
	}
	s := fmt.Sprintf(format, v)
	var rs []string
	for _, ref := range []string{"direct", "haproxy"} {
		if q, ok := r.ratio(sys, ref, metric); ok && ref != sys {
			rs = append(rs, fmt.Sprintf("%.2f", q))
		} else {
			rs = append(rs, "–")
		}
	}
	if rs[0] == "–" && rs[1] == "–" {
		return s
	}
	return fmt.Sprintf("%s (%s / %s)", s, rs[0], rs[1])
}

// printNotes prints the rounds, error counts and the CPU other processes
// took per system, so a reader can judge the noise.
func printNotes(r results) {
	for _, s := range systems {
		if r[s.id] == nil {
			continue
		}
		var other []string
		for _, sc := range []string{"up", "down", "conns", "rr"} {
			if v, ok := r.median(s.id, sc+"_other"); ok {
				other = append(other, fmt.Sprintf("%s %.2f", sc, v))
			}
		}
		rounds := 0
		for _, vs := range r[s.id] {
			rounds = max(rounds, len(vs))
		}
		fmt.Printf("- %s: %d rounds; errors: conns %.0f, rr %.0f, idle %.0f; other processes' CPU (cores, median): %s\n",
			s.id, rounds, r.sum(s.id, "conns_errors"), r.sum(s.id, "rr_errors"),
			r.sum(s.id, "idle_failed"), strings.Join(other, ", "))
	}
	fmt.Println()
}

// printBaseline prints, when the run had a baseline (BASE_REV), the
// current plugin's figures as ratios to the baseline's: the before/after
// of a change, measured side by side in one run.
func printBaseline(r results) {
	if r["baseline"] == nil || r["plugin"] == nil {
		return
	}
	heads, cells := []string{""}, []string{"this plugin / baseline"}
	for _, c := range columns {
		heads = append(heads, c.head)
		if v, ok := r.ratio("plugin", "baseline", c.metric); ok {
			cells = append(cells, fmt.Sprintf("%.2f", v))
		} else {
			cells = append(cells, "–")
		}
	}
	fmt.Println("Before and after, from the same run: this plugin's medians divided by the baseline's.")
	fmt.Println()
	fmt.Println("| " + strings.Join(heads, " | ") + " |")
	fmt.Println(strings.Repeat("| --- ", len(heads)) + "|")
	fmt.Println("| " + strings.Join(cells, " | ") + " |")
	fmt.Println()
}
