package tcpproxy

import (
	"bufio"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// The history as the status shows it, recorded by the real sampler of a
// loaded config on a simulated clock: each tick is one sampling round,
// one slot (10 s) after the last, without waiting for the wall clock.

// sampleClock drives the samplers of the configs started after
// newSampleClock. Its ticks end at the present: the first of n ticks is
// n slots ago.
type sampleClock struct {
	t     testing.TB
	ticks chan time.Time
	now   time.Time
}

func newSampleClock(t testing.TB, n int) *sampleClock {
	t.Helper()
	c := &sampleClock{t: t, ticks: make(chan time.Time),
		now: time.Now().Truncate(history.Interval).Add(-time.Duration(n) * history.Interval)}
	historyTicks = c.ticks
	t.Cleanup(func() { historyTicks = nil }) // after caddy.Stop: registered first
	return c
}

// tick runs one sampling round of the running config, one slot after the
// last, and returns once it has been recorded.
func (c *sampleClock) tick() {
	c.t.Helper()
	c.now = c.now.Add(history.Interval)
	select {
	case c.ticks <- c.now:
	case <-time.After(10 * time.Second):
		c.t.Fatal("no sampler took the tick within 10s")
	}
	a, err := tcpproxyApp(caddy.ActiveContext())
	if err != nil || a == nil {
		c.t.Fatalf("no running tcpproxy app: %v", err)
	}
	// Polled finely: a round takes microseconds, and an hour is 360.
	slot, deadline := history.SlotOf(c.now), time.Now().Add(10*time.Second)
	for a.sampled.Load() != slot {
		if time.Now().After(deadline) {
			c.t.Fatal("the sampling round was not recorded within 10s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// end is the end of the newest slot, as the status writes it.
func (c *sampleClock) end() string {
	return time.Unix(0, history.SlotOf(c.now)*int64(history.Interval)).UTC().Format(time.RFC3339)
}

// last returns the last n points of a series, zeros for a missing one.
func last(s []int64, n int) []int64 {
	if len(s) == 0 {
		return make([]int64, n)
	}
	return s[len(s)-n:]
}

func TestHistoryShowsTrafficAndRejectionsPerSlot(t *testing.T) {
	clock := newSampleClock(t, 4)
	web, dead := newBackend(t, "web"), newBackend(t, "dead")
	dead.stop()
	ports := freePorts(t, 2)
	bind := []string{"127.0.0.1"}
	admin := loadConfigWithAdmin(t, proxyConfig(
		app{"name": "hist", "ports": ports[:1], "bind": bind, "targets": addrs(web), "max_connections": 1},
		app{"name": "hist-dead", "ports": ports[1:], "bind": bind, "targets": addrs(dead),
			"health_checks": map[string]any{"disabled": true}},
	))
	addr := hostPort(ports[0])

	// Slot 1: 3 connections of 100 bytes each way (plus the greeting),
	// one at a time (max_connections is 1).
	st := appStateOf(t, "hist")
	for range 3 {
		waitFor(t, 10*time.Second, "the app's last connection to end", func() bool { return st.active.Load() == 0 })
		echo(t, addr, string(make([]byte, 100)))
	}
	waitFor(t, 10*time.Second, "the app's last connection to end", func() bool { return st.active.Load() == 0 })
	tg := lookupTarget(t, "hist", web.addr)
	waitBytes(t, tg, 300, 3*104)
	clock.tick()
	// Slot 2: one connection held open, two rejected beyond max_connections.
	held := dial(t, addr)
	defer held.Close()
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	waitBytes(t, tg, 300, 3*104+4)
	mustBeClosed(t, addr)
	mustBeClosed(t, addr)
	waitFor(t, 10*time.Second, "two max_connections rejections", func() bool {
		return st.rejected[reasonMaxConnections].Load() == 2
	})
	clock.tick()
	// Slot 3: a failed dial (the target looks healthy), then no healthy target.
	mustBeClosed(t, hostPort(ports[1]))
	mustBeClosed(t, hostPort(ports[1]))
	clock.tick()

	doc := getStatus(t, admin)
	if doc.HistoryEnd != clock.end() {
		t.Errorf("history_end %q, want %q", doc.HistoryEnd, clock.end())
	}
	a, d := doc.Apps[0], doc.Apps[1]
	h := a.Targets[0].History
	if h == nil || h.Interval != "10s" || h.End != clock.end() || h.Recorded != 3 || len(h.Connections) != history.Slots {
		t.Fatalf("target history %+v: want 10s slots, end %s, 3 recorded, %d points", h, clock.end(), history.Slots)
	}
	wantPoints(t, "target connections", h.Connections, 3, 1, 0)
	wantPoints(t, "target active", h.Active, 0, 1, 1)
	wantPoints(t, "target bytes_up", h.BytesUp, 300, 0, 0)
	wantPoints(t, "target bytes_down", h.BytesDown, 3*(100+4), 4, 0) // "web\n" greets each
	wantPoints(t, "app connections", a.History.Connections, 3, 1, 0)
	wantPoints(t, "app rejections", a.History.Rejections, 0, 2, 0)
	wantPoints(t, "app max_connections", a.History.RejectionsByReason["max_connections"], 0, 2, 0)
	if a.Rejections["max_connections"] != 2 || a.ActiveConnections != 1 {
		t.Errorf("app rejections %v, active %d; want 2 max_connections, 1 active", a.Rejections, a.ActiveConnections)
	}
	if got := a.Targets[0]; got.BytesUp != 300 || got.BytesDown != 3*104+4 || got.Rates.Active != 1 {
		t.Errorf("target bytes %d up, %d down, rates %+v; want 300, %d and 1 active", got.BytesUp, got.BytesDown, got.Rates, 3*104+4)
	}
	wantPoints(t, "dead app dial_failed", d.History.RejectionsByReason["dial_failed"], 0, 0, 1)
	wantPoints(t, "dead app no_healthy_target", d.History.RejectionsByReason["no_healthy_target"], 0, 0, 1)
	wantPoints(t, "dead target rejections (failed dials)", d.Targets[0].History.Rejections, 0, 0, 1)
	if r := d.Rates; r.RejectionsPerSec != 0.2 {
		t.Errorf("dead app rates %+v, want 0.2 rejections/s (2 in the newest 10 s)", r)
	}
	if d.Targets[0].DialErrors != 1 {
		t.Errorf("dead target dial_errors %d, want 1", d.Targets[0].DialErrors)
	}
}

// waitBytes waits for a target's byte counters to reach what the client
// saw: a client may read bytes an instant before the relay counts them.
func waitBytes(t testing.TB, tg *target, up, down uint64) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%s to count %d bytes up and %d down", tg.addr, up, down), func() bool {
		return tg.up.n.Load() == up && tg.down.n.Load() == down
	})
}

func wantPoints(t *testing.T, name string, s []int64, want ...int64) {
	t.Helper()
	got := last(s, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: last %d points %v, want %v", name, len(want), got, want)
	}
}

// appStateOf returns the shared state of a loaded app.
func appStateOf(t testing.TB, name string) *appState {
	t.Helper()
	var found *appState
	appStates.Range(func(k, v any) bool {
		if k == name {
			found = v.(*appState)
		}
		return found == nil
	})
	if found == nil {
		t.Fatalf("no app state %s", name)
	}
	return found
}

// The rings live in the target and app state: a reload that keeps a
// target keeps its history, and the new config's sampler goes on with it.
func TestHistorySurvivesReload(t *testing.T) {
	clock := newSampleClock(t, 3)
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	cfg := func(bs ...*backend) any {
		return proxyConfig(app{"name": "kept", "ports": []int{port}, "bind": []string{"127.0.0.1"}, "targets": addrs(bs...)})
	}
	admin := loadConfigWithAdmin(t, cfg(a))
	echo(t, hostPort(port), "x")
	clock.tick()
	echo(t, hostPort(port), "x")
	echo(t, hostPort(port), "x")
	clock.tick()
	if err := tryLoadWith(cfg(a, b), withAdmin(admin)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		echo(t, hostPort(port), "x") // one each to a and b
	}
	clock.tick()
	doc := getStatus(t, admin)
	ha, hb := doc.Apps[0].Targets[0].History, doc.Apps[0].Targets[1].History
	if ha.Recorded != 3 || hb.Recorded != 1 {
		t.Errorf("recorded slots: a %d, b %d; want 3 (kept across the reload) and 1", ha.Recorded, hb.Recorded)
	}
	wantPoints(t, "a connections", ha.Connections, 1, 2, 1)
	wantPoints(t, "b connections", hb.Connections, 0, 0, 1)
	wantPoints(t, "app connections", doc.Apps[0].History.Connections, 1, 2, 2)
}

// An hour of samples on the simulated clock: the window is the newest 15
// minutes, every series keeps its 90 points, and no sampling round
// allocates, so nothing grows however long the proxy runs.
func TestHistoryKeepsItsSizeOverAnHourOfSamples(t *testing.T) {
	const hour = 360 // slots
	clock := newSampleClock(t, hour)
	b := newBackend(t, "b")
	port := freePort(t)
	admin := loadConfigWithAdmin(t, proxyConfig(app{"name": "hour", "ports": []int{port},
		"bind": []string{"127.0.0.1"}, "targets": addrs(b)}))
	for k := range hour {
		for range k % 3 {
			echo(t, hostPort(port), "x")
		}
		clock.tick()
	}
	doc := getStatus(t, admin)
	for _, h := range []*historyDoc{doc.Apps[0].History, doc.Apps[0].Targets[0].History} {
		if h.Recorded != history.Slots || len(h.Connections) != history.Slots || len(h.BytesUp) != history.Slots ||
			len(h.BytesDown) != history.Slots || h.End != clock.end() {
			t.Fatalf("after an hour: recorded %d, %d/%d/%d points, end %s; want %d each, end %s", h.Recorded,
				len(h.Connections), len(h.BytesUp), len(h.BytesDown), h.End, history.Slots, clock.end())
		}
		for i, v := range h.Connections {
			if k := hour - history.Slots + i; v != int64(k%3) {
				t.Fatalf("slot %d (tick %d): %d connections, want %d", i, k, v, k%3)
			}
		}
	}

	a, _ := tcpproxyApp(caddy.ActiveContext())
	now := clock.now
	if n := testing.AllocsPerRun(hour, func() {
		now = now.Add(history.Interval)
		a.sample(now)
	}); n != 0 {
		t.Errorf("a sampling round allocates %v times, want 0", n)
	}
}

// benchTarget is a target's shared state outside any config.
func benchTarget(tb testing.TB, app string) *target {
	ts := acquireTargets(app, []TargetConfig{{Address: "127.0.0.1:1"}})
	tb.Cleanup(func() { releaseTargets(ts) })
	return ts[0]
}

// BenchmarkByteCounterPerBurst is what the relay pays per burst to count
// bytes: the Prometheus counter alone (before the history) and the
// byteCounter that adds the atomic the sampler reads, through the
// relay.Counter interface as the relay calls it; "parallel" has every CPU
// counting both directions of one target.
func BenchmarkByteCounterPerBurst(b *testing.B) {
	tg := benchTarget(b, "bench-burst")
	type counter interface{ Add(float64) }
	for _, c := range []struct {
		name     string
		up, down counter
	}{
		{"prometheus", tg.m.bytesUp, tg.m.bytesDown},
		{"prometheus+atomic", &tg.up, &tg.down},
	} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.up.Add(4096)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var mu sync.Mutex // alternates the goroutines between directions
			up := true
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				mine := c.down
				if up {
					mine = c.up
				}
				up = !up
				mu.Unlock()
				for pb.Next() {
					mine.Add(4096)
				}
			})
		})
	}
}

// benchConfig is a config's running apps outside Caddy: 1,000 targets in
// 10 apps, released when the benchmark ends.
func benchConfig(b *testing.B, prefix string) *App {
	a := &App{}
	for i := range 10 {
		name := fmt.Sprintf("%s-%d", prefix, i)
		cfgs := make([]TargetConfig, 100)
		for j := range cfgs {
			cfgs[j] = TargetConfig{Address: fmt.Sprintf("10.0.%d.%d:80", i, j)}
		}
		r := &runningApp{name: name, state: acquireAppState(name)}
		set, err := newTargetSet(name, Upstreams{Targets: cfgs}.withDefaults(), &r.state.next)
		if err != nil {
			b.Fatal(err)
		}
		r.set = set
		b.Cleanup(func() { r.set.release(); releaseAppState(r.state) })
		a.running = append(a.running, r)
	}
	return a
}

// BenchmarkSampleRound1000Targets is one sampling round of a config with
// 1,000 targets in 10 apps, as the sampler runs it every 10 s.
func BenchmarkSampleRound1000Targets(b *testing.B) {
	a := benchConfig(b, "bench-sample")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(history.Interval)
		for _, r := range a.running {
			for _, t := range r.set.current() {
				t.total.Add(3)
				t.up.Add(1 << 20)
			}
		}
		a.sample(now)
	}
}

// BenchmarkStatusJSON1000Targets is one status request of a config with
// 1,000 busy targets (every slot of every series non-zero): the JSON the
// page's 2-second refreshes ask for (?history=0), and with the history,
// which it asks for once per slot. JSON-bytes is the size of the answer.
func BenchmarkStatusJSON1000Targets(b *testing.B) {
	a := benchConfig(b, "bench-json")
	now := time.Now()
	for k := range history.Slots {
		now = now.Add(history.Interval)
		for _, r := range a.running {
			for _, t := range r.set.current() {
				t.total.Add(uint64(k + 1))
				t.up.Add(float64(k+1) * 1e6)
				t.down.Add(float64(k+1) * 1e7)
				t.dialErrors.Add(1)
			}
		}
		a.sample(now)
	}
	for _, withHistory := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", withHistory), func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				body, err := statusJSON(a, statusOptions{history: withHistory})
				if err != nil {
					b.Fatal(err)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "JSON-bytes")
		})
	}
}
