package probe

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The servers of every benchmark run in a helper process: allocation
// figures are the prober's alone. Run with a bounded count, e.g.
//
//	go test -run '^$' -bench . -benchmem -benchtime 20x ./internal/probe/

const benchTargets = 1000

var redisCheck = Check{Timeout: 2 * time.Second, Send: []byte("info replication\r\n"), Expect: []byte("role:master")}

// BenchmarkRound1000 is one health round: 1,000 send/expect probes, all
// concurrent, one per target, against 1,000 loopback listeners that
// answer. The round must complete well within one timeout: worst-round-ms
// against timeout-ms.
func BenchmarkRound1000(b *testing.B) {
	addrs := startHelperServers(b, benchTargets)
	p := mustNew(b, redisCheck)
	ctx, cancel := context.WithCancel(context.Background()) // as the health checker's
	defer cancel()
	var worst time.Duration
	var before, after runtime.MemStats
	rounds := 0
	runtime.ReadMemStats(&before)
	for b.Loop() {
		start := time.Now()
		var failed atomic.Int32
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for _, addr := range addrs {
			wg.Go(func() {
				if err := p.Run(ctx, addr); err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			})
		}
		wg.Wait()
		worst = max(worst, time.Since(start))
		rounds++
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of %d probes failed, first: %v", n, len(addrs), firstErr.Load())
		}
	}
	runtime.ReadMemStats(&after)
	probes := float64(rounds * len(addrs))
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-round-ms")
	b.ReportMetric(float64(redisCheck.Timeout.Milliseconds()), "timeout-ms")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/probes, "allocs/probe")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/probes, "B/probe")
}

// benchSequential runs one probe per op, cycling over the helper's
// listeners so that no single destination runs out of ports in TIME_WAIT.
func benchSequential(b *testing.B, run func(addr string) error) {
	addrs := startHelperServers(b, benchTargets)
	i := 0
	for b.Loop() {
		if err := run(addrs[i%len(addrs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDial is the floor: a bare dial and close, what a connect-only
// probe did before this package.
func BenchmarkDial(b *testing.B) {
	d := net.Dialer{Timeout: 2 * time.Second}
	benchSequential(b, func(addr string) error {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// BenchmarkProbeConnect is a connect-only probe.
func BenchmarkProbeConnect(b *testing.B) {
	p := mustNew(b, Check{Timeout: 2 * time.Second})
	benchSequential(b, func(addr string) error { return p.Run(context.Background(), addr) })
}

// BenchmarkProbeSendExpect is one send/expect probe.
func BenchmarkProbeSendExpect(b *testing.B) {
	p := mustNew(b, redisCheck)
	benchSequential(b, func(addr string) error { return p.Run(context.Background(), addr) })
}

// BenchmarkProbeSendExpectCancellable is the same with a cancellable
// context, as the health checker gives (it costs the cancellation hook).
func BenchmarkProbeSendExpectCancellable(b *testing.B) {
	p := mustNew(b, redisCheck)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchSequential(b, func(addr string) error { return p.Run(ctx, addr) })
}

// BenchmarkProbeHTTP is one HTTP probe with the default Host header.
func BenchmarkProbeHTTP(b *testing.B) {
	p := mustNew(b, Check{Timeout: 2 * time.Second, HTTP: &HTTP{URI: "/health"}})
	benchSequential(b, func(addr string) error { return p.Run(context.Background(), addr) })
}
