package tcpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Benchmarks of the per-connection hot path. CI runs them with
// -benchtime=1x to keep them compiling; run them with
// `go test -run '^$' -bench . -benchmem` for figures.

// Target selection is benchmarked, with its allocations asserted, in
// internal/balance.

// BenchmarkHealthRoundThousandTargets times one health round over 1,000
// targets with a send/expect probe (half answering, half refusing); the
// goal is one round within one probe timeout, because targets are probed
// concurrently: rounds-per-timeout must stay below 1.
func BenchmarkHealthRoundThousandTargets(b *testing.B) {
	const n = 1000
	addrs := make([]TargetConfig, 0, n)
	for i := 0; i < n/2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go answerLines(ln, "# Replication\r\nrole:master\r\n")
		addrs = append(addrs, TargetConfig{Address: ln.Addr().String()})
	}
	for _, p := range freePorts(b, n/2) {
		addrs = append(addrs, TargetConfig{Address: hostPort(p)}) // nothing listens: refused
	}
	ts := acquireTargets("bench-health", addrs)
	defer releaseTargets(ts)
	timeout := 2 * time.Second
	u := Upstreams{HealthChecks: &HealthChecks{Timeout: Duration(timeout), Send: "info replication\r\n", Expect: "role:master"}}
	u = u.withDefaults()
	p, err := u.HealthChecks.prober("", appErrorf("bench-health"))
	if err != nil {
		b.Fatal(err)
	}
	hc := newHealthChecker(func() []*target { return ts }, u, p, zap.NewNop())
	ctx := context.Background()
	now := time.Now()
	var worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Hour) // every target due
		start := time.Now()
		hc.launchDue(ctx, now)
		hc.probes.Wait()
		worst = max(worst, time.Since(start))
	}
	b.StopTimer()
	up := 0
	for _, t := range ts {
		if t.healthy.Load() {
			up++
		}
	}
	if up != n/2 {
		b.Fatalf("%d targets up after the rounds, want the %d that answer", up, n/2)
	}
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms/round")
	b.ReportMetric(worst.Seconds()/timeout.Seconds(), "rounds-per-timeout")
}

// answerLines answers every line a connection sends with answer, until
// the connection closes.
func answerLines(ln net.Listener, answer string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := io.WriteString(c, answer); err != nil {
					return
				}
			}
		}()
	}
}

// BenchmarkLoadThousandPorts times loading a config whose one app listens
// on 1,000 ports, until every port accepts; the goal is under a second.
func BenchmarkLoadThousandPorts(b *testing.B) {
	backend := newBackend(b, "b")
	for i := 0; i < b.N; i++ {
		low := freePortRange(b, 1000)
		start := time.Now()
		loadConfig(b, proxyConfig(app{"name": "thousand", "bind": []string{"127.0.0.1"},
			"ports": []string{fmt.Sprintf("%d-%d", low, low+999)}, "targets": addrs(backend)}))
		elapsed := time.Since(start)
		b.ReportMetric(float64(elapsed.Milliseconds()), "ms/load")
		b.StopTimer()
		for p := low; p < low+1000; p += 111 {
			echo(b, hostPort(p), "up")
		}
		_ = caddy.Stop()
		b.StartTimer()
	}
}

// freePortRange finds n consecutive ports that are free on 127.0.0.1,
// above the ephemeral range so that outgoing connections do not take them.
func freePortRange(t testing.TB, n int) int {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		low := 20000 + rand.IntN(10000-n)
		if portsFree(low, n) {
			return low
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

func portsFree(low, n int) bool {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for p := low; p < low+n; p++ {
		ln, err := net.Listen("tcp", hostPort(p))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}
