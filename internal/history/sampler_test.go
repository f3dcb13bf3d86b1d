package history

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// counters stands for a target's data-path counters: the sampler only
// reads them.
type counters struct{ conns, up, active atomic.Int64 }

func (c *counters) sample() Sample {
	return Sample{Connections: uint64(c.conns.Load()), BytesUp: uint64(c.up.Load()), Active: c.active.Load()}
}

// driver runs a Sampler on manual ticks; tick returns once the sample
// of that tick has been taken, so the test can change counters between
// ticks without racing the sampler.
type driver struct {
	t      *testing.T
	ticks  chan time.Time
	taken  chan struct{}
	cancel context.CancelFunc
	done   <-chan struct{}
}

func newDriver(t *testing.T, sample func(time.Time)) *driver {
	d := &driver{t: t, ticks: make(chan time.Time), taken: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	t.Cleanup(cancel)
	d.done = Sampler{Ticks: d.ticks, Sample: func(now time.Time) {
		sample(now)
		d.taken <- struct{}{}
	}}.Start(ctx)
	return d
}

func (d *driver) tick(now time.Time) {
	d.ticks <- now
	<-d.taken
}

// stop closes the ticks and waits for the sampler to return.
func (d *driver) stop() {
	close(d.ticks)
	waitClosed(d.t, d.done, "sampler after its ticks were closed")
}

// simulate drives a Sampler through n ticks of simulated time, one slot
// apart and off into each slot, with traffic added before each tick, and
// returns once the sampler has returned.
func simulate(t *testing.T, n int, off time.Duration, traffic func(k int), sample func(time.Time)) {
	t.Helper()
	d := newDriver(t, sample)
	for k := range n {
		traffic(k)
		d.tick(at(k, off))
	}
	d.stop()
}

func waitClosed(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s has not returned after 10s", what)
	}
}

func TestRingKeepsItsSizeOverAnHourAndADay(t *testing.T) {
	for _, c := range []struct {
		name  string
		ticks int
	}{{"hour", 360}, {"day", 8640}} {
		t.Run(c.name, func(t *testing.T) {
			var cs counters
			app, tg := NewApp(), NewTarget()
			data, appData := &tg.r.data[0], &app.r.data[0]
			simulate(t, c.ticks, time.Second, func(k int) {
				cs.conns.Add(int64(k % 7)) // varying traffic
				cs.up.Add(1000)
				cs.active.Store(int64(k % 5))
			}, func(now time.Time) {
				tg.Record(now, cs.sample(), app)
				app.Record(now, cs.active.Load(), Rejections{})
			})
			if len(tg.r.data) != Slots*targetCols || &tg.r.data[0] != data ||
				len(app.r.data) != Slots*appCols || &app.r.data[0] != appData {
				t.Fatal("a ring's storage was reallocated or resized")
			}
			s := tg.Snapshot()
			if s.Recorded != Slots || len(s.Connections) != Slots || len(s.BytesUp) != Slots || len(s.Active) != Slots {
				t.Fatalf("recorded %d, %d/%d/%d points; want %d each", s.Recorded,
					len(s.Connections), len(s.BytesUp), len(s.Active), Slots)
			}
			// The window is exactly the last 90 ticks' traffic.
			for i := range Slots {
				k := c.ticks - Slots + i
				if s.Connections[i] != int64(k%7) || s.BytesUp[i] != 1000 || s.Active[i] != int64(k%5) {
					t.Fatalf("slot %d (tick %d): %d conns, %d up, %d active; want %d, 1000, %d",
						i, k, s.Connections[i], s.BytesUp[i], s.Active[i], k%7, k%5)
				}
			}
			if want := at(c.ticks-1, 0).UTC().Format(time.RFC3339); s.End != want {
				t.Errorf("end = %s, want %s", s.End, want)
			}
			if a := app.Snapshot(); !equal(a.Connections, s.Connections) {
				t.Errorf("app connections differ from its one target's")
			}
		})
	}
}

func TestHourOfRecordsAllocatesNothing(t *testing.T) {
	app, tg := NewApp(), NewTarget()
	hour := 0
	allocs := testing.AllocsPerRun(5, func() {
		for k := range 360 {
			now := at(hour*360+k, time.Second)
			tg.Record(now, Sample{Connections: uint64(hour*360 + k)}, app)
			app.Record(now, 1, Rejections{})
		}
		hour++
	})
	if allocs != 0 {
		t.Errorf("an hour of Records allocates %v times, want 0", allocs)
	}
}

// Two configs' samplers during a reload, ticking at different points of
// each slot, over the same rings: every connection is counted once.
func TestTwoSamplersCountEachSlotOnce(t *testing.T) {
	var cs counters
	app, tg := NewApp(), NewTarget()
	var recorded [2]atomic.Int64
	sampler := func(i int) func(time.Time) {
		return func(now time.Time) {
			if tg.Record(now, cs.sample(), app) {
				recorded[i].Add(1)
			}
			app.Record(now, cs.active.Load(), Rejections{})
		}
	}
	a, b := newDriver(t, sampler(0)), newDriver(t, sampler(1))
	const n = 60
	for k := range n {
		// Alternate which sampler comes first in a slot.
		first, second := a, b
		if k%2 == 1 {
			first, second = b, a
		}
		cs.conns.Add(10)
		first.tick(at(k, 10*time.Millisecond))
		cs.conns.Add(5)
		second.tick(at(k, 3*time.Second))
	}
	a.stop()
	b.stop()

	s := tg.Snapshot()
	// The 5 connections after the last slot's first sample wait for a
	// slot that never comes.
	if got := sum(s.Connections); got != n*15-5 {
		t.Errorf("target counted %d connections, want %d", got, n*15-5)
	}
	// The first sampler of each slot records it; the 5 connections seen
	// by the second one land in the next slot.
	wantTail(t, "connections", s.Connections, 15, 15, 15)
	if got := recorded[0].Load() + recorded[1].Load(); got != n {
		t.Errorf("%d Records took effect, want one per slot (%d)", got, n)
	}
	if recorded[0].Load() == 0 || recorded[1].Load() == 0 {
		t.Errorf("records by sampler: %d and %d; want both to have won slots", recorded[0].Load(), recorded[1].Load())
	}
	if a := app.Snapshot(); !equal(a.Connections, s.Connections) {
		t.Errorf("app connections %v, want its one target's %v", tail(a.Connections, 5), tail(s.Connections, 5))
	}
}

func TestSamplerEndsWithContext(t *testing.T) {
	before := runtime.NumGoroutine()

	// On the wall clock: cancelled while waiting for its first tick.
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	wall := Sampler{Sample: func(time.Time) { calls.Add(1) }}.Start(ctx)

	// On manual ticks: cancelled between ticks.
	var manualCalls atomic.Int64
	d := newDriver(t, func(time.Time) { manualCalls.Add(1) })
	d.tick(at(0, 0))
	d.tick(at(1, 0))
	d.cancel()
	waitClosed(t, d.done, "sampler on manual ticks")
	if got := manualCalls.Load(); got != 2 {
		t.Errorf("manual sampler sampled %d times, want 2", got)
	}
	select {
	case d.ticks <- at(2, 0):
		t.Error("a sampler whose context ended still takes ticks")
	default: // it has returned: nobody receives
	}

	cancel()
	waitClosed(t, wall, "sampler on the wall clock")
	if calls.Load() > 1 {
		t.Errorf("wall-clock sampler sampled %d times in well under 2 intervals", calls.Load())
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the samplers started", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUntilNextSlot(t *testing.T) {
	for _, c := range []struct {
		off, want time.Duration
	}{
		{0, Interval}, {time.Millisecond, Interval - time.Millisecond},
		{9 * time.Second, time.Second}, {-2 * time.Second, 2 * time.Second},
	} {
		if got := untilNextSlot(t0.Add(c.off)); got != c.want {
			t.Errorf("untilNextSlot(t0%+v) = %v, want %v", c.off, got, c.want)
		}
	}
}
