package e2e

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// counts samples the process's goroutines and file descriptors.
func counts(t *testing.T, proc *caddyProc) (gor, fds int) {
	t.Helper()
	gor, err := proc.goroutines()
	if err != nil {
		t.Fatal(err)
	}
	fds, err = proc.fds()
	if err != nil {
		t.Fatal(err)
	}
	return gor, fds
}

// settledCounts polls until two consecutive samples agree (the previous
// admin server shuts down in the background after a load) and returns
// them.
func settledCounts(t *testing.T, proc *caddyProc) (gor, fds int) {
	t.Helper()
	pg, pf := counts(t, proc)
	waitFor(5*time.Second, func() bool {
		g, f := counts(t, proc)
		same := g == pg && f == pf
		pg, pf = g, f
		return same
	})
	return pg, pf
}

// TestReloadsLeakNoGoroutinesOrFiles: behaviour 8. After 40 reloads that
// add and remove ports and apps, with connections (short, long-lived and
// a burst) in between, the goroutine and file descriptor counts return to
// their baseline.
func TestReloadsLeakNoGoroutinesOrFiles(t *testing.T) {
	a := newEchoBackend(t, "A")
	b := newEchoBackend(t, "B")
	c := newEchoBackend(t, "C")
	p := freePorts(t, 5)
	health := &healthCfg{Interval: "30s", Timeout: "1s"}
	withHealth := func(cfg proxyCfg) proxyCfg {
		for i := range cfg.Apps {
			cfg.Apps[i].HealthChecks = health
		}
		return cfg
	}
	cfgX := withHealth(proxyCfg{Apps: []appCfg{
		app("one", []int{p[0], p[1]}, a.addr, b.addr),
		app("two", []int{p[2]}, c.addr),
	}})
	cfgY := withHealth(proxyCfg{Apps: []appCfg{
		app("one", []int{p[0]}, a.addr),
		app("three", []int{p[3], p[4]}, b.addr, c.addr),
	}})
	portsOf := func(cfg proxyCfg) []int {
		var out []int
		for _, ap := range cfg.Apps {
			out = append(out, ap.Ports...)
		}
		return out
	}
	proc := startCaddy(t, cfgY)
	if err := proc.load(cfgX); err != nil { // warm-up reload
		t.Fatal(err)
	}
	checkServes(t, "warm-up", portsOf(cfgX)...)
	baseG, baseF := settledCounts(t, proc)

	type held struct {
		conn net.Conn
		r    *bufio.Reader
	}
	var long []held
	defer func() {
		for _, h := range long {
			h.conn.Close()
		}
	}()
	short := 0
	const reloads = 40 // even: the last one loads X again
	for i := 1; i <= reloads; i++ {
		cfg := cfgY
		if i%2 == 0 {
			cfg = cfgX
		}
		if err := proc.load(cfg); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		for _, port := range portsOf(cfg) {
			for k := 0; k < 2; k++ {
				if _, cerr := exchange(port, []byte("between-reloads")); cerr != nil {
					t.Fatalf("reload %d, port %d: %v", i, port, cerr)
				}
				short++
			}
		}
		// Every 8 reloads: long-lived connections on every port, which
		// stay open across the following reloads (including ones that
		// remove their port or app).
		if i%8 == 1 {
			for _, port := range portsOf(cfg) {
				conn, err := dialProxy(port)
				if err != nil {
					t.Fatal(err)
				}
				r := bufio.NewReader(conn)
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := greeting(r); err != nil {
					t.Fatalf("long-lived connection on %d: %v", port, err)
				}
				long = append(long, held{conn, r})
			}
		}
		// A burst of concurrent connections halfway.
		if i == reloads/2 {
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for k := 0; k < 200; k++ {
				wg.Add(1)
				go func(k int) {
					defer wg.Done()
					ports := portsOf(cfg)
					if _, cerr := exchange(ports[k%len(ports)], []byte("burst")); cerr != nil {
						errs <- cerr
					}
				}(k)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("burst: %v", err)
			}
			short += 200
		}
	}
	midG, midF := counts(t, proc)
	for i, h := range long {
		if err := echoOnce(h.conn, h.r, []byte(fmt.Sprintf("long-lived-%d", i))); err != nil {
			t.Errorf("long-lived connection %d after the reloads: %v", i, err)
		}
		h.conn.Close()
	}
	nLong := len(long)
	long = nil

	var g, f int
	ok := waitFor(20*time.Second, func() bool {
		// Closed connections leave splice pipes in Go's pool until two
		// garbage collections drop them (their finalizers close the
		// fds): force the collections rather than wait for them.
		_, _, _ = proc.get("/debug/pprof/heap?gc=1")
		g, f = counts(t, proc)
		return g <= baseG+5 && f <= baseF+5
	})
	t.Logf("baseline after a warm-up reload: %d goroutines, %d fds; after %d reloads with %d long-lived connections open: %d goroutines, %d fds; once they closed: %d goroutines, %d fds (%d short connections)",
		baseG, baseF, reloads, nLong, midG, midF, g, f, short)
	if !ok {
		_, dump, _ := proc.get("/debug/pprof/goroutine?debug=1")
		t.Errorf("counts did not return to baseline: goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, baseG, f, baseF, dump)
	}
}
