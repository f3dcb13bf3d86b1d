//go:build linux

package tcpproxy

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/netnstest"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/sklookup"
)

// BenchmarkListenerSetup loads a config whose one app listens on 1,000,
// 30,000 or 64,000 ports (1025 up, on 127.0.0.1) in each listener mode:
// ns/op is the load (caddy.Load: provision and start, every port
// accepting when it returns) and cpu-ms the process's CPU time for it
// (what a busy machine does not inflate); fds and goroutines are what the
// running app holds beyond the process's baseline; stop-ms is the wall
// time of caddy.Stop. Each load starts from no config, so sk_lookup's
// includes loading and attaching the program. It runs in a private
// network namespace (the range covers the ephemeral ports). The sockets
// mode needs a descriptor per port: where the limit cannot be raised
// enough (raising the hard limit needs CAP_SYS_RESOURCE) it stops at the
// most ports that fit, named in the sub-benchmark.
func BenchmarkListenerSetup(b *testing.B) {
	if !netnstest.Bench(b, sklookup.Available) {
		return
	}
	limit := raiseFDLimit(b, 140000)
	// On 127.0.0.2, so that its port is outside the app's (127.0.0.1).
	target := newBackendOn(b, "b", "tcp", "127.0.0.2:0").addr
	capped := false
	for _, n := range []int{1000, 30000, 64000} {
		b.Run(fmt.Sprintf("sk_lookup/ports=%d", n), func(b *testing.B) { benchListenerSetup(b, listenerSkLookup, n, target) })
		if most := limit - 1000; n > most && !capped {
			capped = true
			b.Run(fmt.Sprintf("sockets/ports=%d(fd-limit-%d)", most, limit), func(b *testing.B) {
				benchListenerSetup(b, listenerSockets, most, target)
			})
		} else if !capped {
			b.Run(fmt.Sprintf("sockets/ports=%d", n), func(b *testing.B) { benchListenerSetup(b, listenerSockets, n, target) })
		}
	}
}

func benchListenerSetup(b *testing.B, mode string, n int, target string) {
	cfg := proxyConfig(app{"name": "wide", "ports": []string{portRangeString(1025, n)}, "bind": []string{"127.0.0.1"},
		"targets": []string{target}, "listener": mode, "health_checks": map[string]any{"disabled": true}})
	fds, goroutines := openFDs(b), runtime.NumGoroutine()
	var stop, cpu time.Duration
	for b.Loop() {
		cpu0 := processCPU(b)
		if err := tryLoad(cfg); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU(b) - cpu0
		b.StopTimer()
		b.ReportMetric(float64(openFDs(b)-fds), "fds")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines), "goroutines")
		for _, p := range []int{1025, 1025 + n/2, 1025 + n - 1} {
			echo(b, hostPort(p), "up")
		}
		t0 := time.Now()
		if err := caddy.Stop(); err != nil {
			b.Fatal(err)
		}
		stop += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms")
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFDLimit raises the descriptor limit towards want (root may raise
// the hard limit) and returns the limit in effect.
func raiseFDLimit(tb testing.TB, want uint64) int {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur < want {
		raised := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	return int(lim.Cur)
}
