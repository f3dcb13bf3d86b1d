package main

import "fmt"

// goal is one of the targets of issues 6 and 17: the plugin's figure compared with a
// reference system's (or with an absolute value when ref is empty).
type goal struct {
	text   string
	metric string
	ref    string  // reference system; "" compares the median itself
	limit  float64 // the ratio (or value) to reach
	atMost bool    // met when ≤ limit (else when ≥ limit)
}

// goals are the goal rows of issues 6 and 17 that bench/run.sh measures
// (issue 17's rr over one connection is measured by bench/census.sh).
var goals = []goal{
	{"bulk up CPU-s per GiB ≤ 0.5x HAProxy", "up_cpu_gib", "haproxy", 0.5, true},
	{"bulk down CPU-s per GiB ≤ 0.5x HAProxy", "down_cpu_gib", "haproxy", 0.5, true},
	{"bulk up MiB/s ≥ 1.5x HAProxy", "up_mibps", "haproxy", 1.5, false},
	{"bulk down MiB/s ≥ 1.5x HAProxy", "down_mibps", "haproxy", 1.5, false},
	{"conns/s ≥ HAProxy", "conns_ps", "haproxy", 1, false},
	{"CPU-s per 10k conns ≤ HAProxy", "conns_cpu_10k", "haproxy", 1, true},
	{"at the least: conns/s ≥ 1.4x caddy-l4", "conns_ps", "l4proxy", 1.4, false},
	{"at the least: conns/s above plain Go's 0.41x direct (PEERS.md)", "conns_ps", "direct", 0.41, false},
	{"at the least: CPU-s per 10k conns below plain Go's 1.63x HAProxy (PEERS.md)", "conns_cpu_10k", "haproxy", 1.63, true},
	{"rr32 req/s ≥ HAProxy", "rr_reqps", "haproxy", 1, false},
	{"rr32 p99 ≤ HAProxy", "rr_p99", "haproxy", 1, true},
	{"idle RSS ≤ 15 KiB per conn (first step)", "idle_rss_kib", "", 15, true},
	{"idle RSS ≤ 8 KiB per conn", "idle_rss_kib", "", 8, true},
	{"idle RSS ≤ 1 KiB per conn (issue 17)", "idle_rss_kib", "", 1, true},
	{"idle: no fds beyond the two sockets (≤ 2 per conn)", "idle_fds", "", 2.05, true},
}

// printGoals states for each goal whether the plugin met it and by how
// much (the measured ratio against the limit).
func printGoals(r results) {
	if r["plugin"] == nil {
		return
	}
	fmt.Println("Goals of issues 6 and 17 (plugin = this plugin):")
	fmt.Println()
	for _, g := range goals {
		var v float64
		var ok bool
		what := "value"
		if g.ref == "" {
			v, ok = r.median("plugin", g.metric)
		} else {
			v, ok = r.ratio("plugin", g.ref, g.metric)
			what = "ratio to " + g.ref
		}
		if !ok {
			fmt.Printf("- %s: not measured\n", g.text)
			continue
		}
		met := v >= g.limit
		if g.atMost {
			met = v <= g.limit
		}
		verdict := "NOT met"
		if met {
			verdict = "met"
		}
		fmt.Printf("- %s: %s (%s %.2f, limit %.2f, %+.0f%% of the limit)\n",
			g.text, verdict, what, v, g.limit, (v/g.limit-1)*100)
	}
	fmt.Println("- 1,000 ports ready in < 1 s, a health round over 1,000 targets within one timeout: not measured by bench/run.sh")
	fmt.Println()
}
