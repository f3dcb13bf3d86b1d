package history

import (
	"context"
	"time"
)

// Sampler calls Sample once per Interval from one goroutine until its
// context ends. On the wall clock it ticks just after each multiple of
// Interval, so the samplers of two configs overlapping during a reload
// read their counters at the same moments and agree on slots.
type Sampler struct {
	// Sample reads the counters and records them; now is the tick's time,
	// to be passed to every Record of the round.
	Sample func(now time.Time)
	// Ticks replaces the wall clock when set: Sample runs once for each
	// time received, until the context ends or Ticks is closed. Tests
	// drive hours of samples through it without sleeping.
	Ticks <-chan time.Time
}

// Start runs the sampler in a new goroutine. The returned channel is
// closed once that goroutine has returned, after ctx ended.
func (s Sampler) Start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return done
}

// Run samples until ctx ends (or Ticks is closed) and then returns.
func (s Sampler) Run(ctx context.Context) {
	ticks := s.Ticks
	if ticks == nil {
		// Wait for the next multiple of Interval, then tick every
		// Interval: a Ticker keeps its phase, so the ticks stay aligned.
		first := time.NewTimer(untilNextSlot(time.Now()))
		select {
		case <-ctx.Done():
			first.Stop()
			return
		case now := <-first.C:
			if ctx.Err() != nil {
				return
			}
			s.Sample(now)
		}
		t := time.NewTicker(Interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now, ok := <-ticks:
			if !ok {
				return
			}
			// A tick and the end of ctx can be ready together: don't
			// sample for a config that is gone.
			if ctx.Err() != nil {
				return
			}
			s.Sample(now)
		}
	}
}

// untilNextSlot is how long from now to the next multiple of Interval on
// the wall clock (a whole Interval when now is one).
func untilNextSlot(now time.Time) time.Duration {
	return Interval - time.Duration(now.UnixNano()%int64(Interval))
}
