package history

import (
	"sync"
	"testing"
)

func TestAppRejectionsByReason(t *testing.T) {
	a := NewApp()
	a.Record(at(0, 0), 4, Rejections{NoHealthyTarget: 2})
	a.Record(at(1, 0), 5, Rejections{NoHealthyTarget: 2, RateLimited: 7, BadProxyHeader: 1})
	s := a.Snapshot()
	wantTail(t, "rejections", s.Rejections, 2, 8)
	wantTail(t, "active", s.Active, 4, 5)
	if len(s.RejectionsByReason) != 3 {
		t.Errorf("reasons = %v, want the three that rejected", s.RejectionsByReason)
	}
	wantTail(t, "no_healthy_target", s.RejectionsByReason["no_healthy_target"], 2, 0)
	wantTail(t, "rate_limited", s.RejectionsByReason["rate_limited"], 0, 7)
	wantTail(t, "bad_proxy_header", s.RejectionsByReason["bad_proxy_header"], 0, 1)
	if r := a.Rates(); r.RejectionsPerSec != 0.8 || r.Active != 5 {
		t.Errorf("rates = %+v, want 0.8 rejections/s, 5 active", r)
	}
	if a.Record(at(1, 0), 9, Rejections{Denied: 100}) {
		t.Error("second App.Record of a slot reported true")
	}
}

func TestReasonNames(t *testing.T) {
	want := []string{"no_healthy_target", "dial_failed", "max_connections", "denied",
		"client_limit", "rate_limited", "bad_proxy_header"}
	for i, name := range want {
		if got := Reason(i).String(); got != name {
			t.Errorf("Reason(%d) = %q, want %q", i, got, name)
		}
	}
	if got := NumReasons.String(); got != "unknown" {
		t.Errorf("NumReasons.String() = %q", got)
	}
}

// During a reload the old and the new config both sample the shared
// rings, with different target sets, in either order within a slot. The
// app's totals must still be the exact sum of its targets' connections:
// no slot counted twice, no spike when a target leaves or comes back.
func TestAppTotalsAcrossOverlappingConfigs(t *testing.T) {
	app := NewApp()
	a, b, c := NewTarget(), NewTarget(), NewTarget()
	var ca, cb, cc uint64 // the targets' cumulative connection counters
	oldCfg := []*Target{a, b, c}
	newCfg := []*Target{a, b}
	counters := map[*Target]*uint64{a: &ca, b: &cb, c: &cc}
	round := func(k int, ts []*Target) {
		for _, tg := range ts {
			tg.Record(at(k, 0), Sample{Connections: *counters[tg]}, app)
		}
		app.Record(at(k, 0), 0, Rejections{})
	}
	var want []int64
	for k := range 12 {
		ca += 1
		cb += 10
		cc += 100
		want = append(want, 111)
		switch {
		case k < 4: // only the old config
			round(k, oldCfg)
		case k < 8: // both, the new one first on odd slots
			if k%2 == 1 {
				round(k, newCfg)
				round(k, oldCfg)
			} else {
				round(k, oldCfg)
				round(k, newCfg)
			}
		default: // the old config is gone, and c with it
			want[k] = 11
			round(k, newCfg)
		}
	}
	wantTail(t, "app connections", app.Snapshot().Connections, want...)
	wantTail(t, "target c", c.Snapshot().Connections, 100, 100, 100, 100, 100, 100, 100, 100)
}

func TestAppTotalsSpreadLikeTheirTargets(t *testing.T) {
	app, tg := NewApp(), NewTarget()
	tg.Record(at(0, 0), Sample{Connections: 1, BytesDown: 8}, app)
	tg.Record(at(4, 0), Sample{Connections: 41, BytesDown: 8 + 4000}, app)
	s := app.Snapshot()
	wantTail(t, "app connections", s.Connections, 1, 10, 10, 10, 10)
	wantTail(t, "app bytes_down", s.BytesDown, 8, 1000, 1000, 1000, 1000)
	if s.Recorded != 5 {
		t.Errorf("recorded = %d, want 5", s.Recorded)
	}
}

// Run with -race: samplers record while status handlers read.
func TestConcurrentRecordAndSnapshot(t *testing.T) {
	app := NewApp()
	targets := []*Target{NewTarget(), NewTarget(), NewTarget()}
	const rounds = 300
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for range rounds {
				for _, tg := range targets {
					_ = tg.Snapshot()
					_ = tg.Rates()
				}
				_ = app.Snapshot()
			}
		})
	}
	// Two configs' samplers over the same rings, racing within each slot
	// as they do on a reload (both tick on the wall clock's slots, so they
	// are never more than a slot apart).
	for k := range rounds {
		var samplers sync.WaitGroup
		for range 2 {
			samplers.Go(func() {
				for _, tg := range targets {
					tg.Record(at(k, 0), Sample{Connections: uint64(k + 1), Active: 1}, app)
				}
				app.Record(at(k, 0), 3, Rejections{Denied: uint64(k)})
			})
		}
		samplers.Wait()
	}
	readers.Wait()
	s := app.Snapshot()
	if s.Recorded != Slots {
		t.Errorf("recorded = %d, want %d", s.Recorded, Slots)
	}
	// Whichever sampler won each slot, every slot holds each target's one
	// new connection, once.
	for i, v := range s.Connections {
		if v != 3 {
			t.Fatalf("app connections[%d] = %d, want 3: %v", i, v, s.Connections)
		}
	}
	wantTail(t, "app rejections", s.Rejections, 1, 1, 1)
}

func TestRecordDoesNotAllocate(t *testing.T) {
	app, tg := NewApp(), NewTarget()
	k := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k++
		tg.Record(at(k, 0), Sample{Connections: uint64(k), BytesUp: uint64(k) << 20, Active: 4}, app)
		app.Record(at(k, 0), 4, Rejections{DialFailed: uint64(k)})
		tg.Record(at(k, 0), Sample{}, app) // the other config's no-op
	})
	if allocs != 0 {
		t.Errorf("Record allocates %v times per round, want 0", allocs)
	}
}
