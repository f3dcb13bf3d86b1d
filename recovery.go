package tcpproxy

import "time"

// passiveRetry brings back a target that failed dials marked down when no
// active probe will (health checks disabled): down_interval after the last
// failed dial the retry opens, the target is eligible again, and the next
// connection that picks it tries it. One connection at a time: the first
// claims the trial and the target is not eligible again while it dials.
// A success marks the target up; a failure marks it down for another
// down_interval and the client fails over at once. Without it one failed
// dial would keep a target down for good.
//
// It is a timer, not a goroutine: nothing runs until it fires, and a fire
// that is no longer wanted (generation changed) does nothing.
type passiveRetry struct {
	timer *time.Timer
	gen   uint64 // bumped by every arm and disarm
	armed bool   // the timer is set and has not fired
	open  bool   // down_interval has passed: a connection may try the target
	trial bool   // a connection is trying it now
	// after is the retry delay of the newest config that started with
	// the target: its down_interval when it has no active checks, 0 when
	// its probes decide. The previous config's probes run on for a
	// moment after a reload: they must not cancel the new config's retry.
	after time.Duration
}

// armRetryLocked opens the retry after d, replacing any earlier one.
func (t *target) armRetryLocked(d time.Duration) {
	r := &t.retry
	if r.timer != nil {
		r.timer.Stop()
	}
	r.gen++
	gen := r.gen
	r.armed, r.open = true, false
	r.timer = time.AfterFunc(d, func() { t.retryDue(gen) })
	t.updateEligibleLocked()
}

// disarmRetryLocked cancels any retry: the target is up, or active probes
// decide.
func (t *target) disarmRetryLocked() {
	r := &t.retry
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.gen++
	wasOpen := r.open
	r.armed, r.open, r.trial = false, false, false
	if wasOpen {
		t.updateEligibleLocked()
	}
}

// retryDue opens the retry armed as generation gen.
func (t *target) retryDue(gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &t.retry
	if gen != r.gen || t.healthy.Load() {
		return
	}
	r.armed, r.open = false, true
	t.updateEligibleLocked()
}

// takeOver records how a config that starts with the target brings it
// back when it is down: after > 0 (no active checks) arms a retry after
// that long for a target that is down with none pending, as when a
// previous config's probes marked it down; 0 leaves it to the config's
// probes.
func (t *target) takeOver(after time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &t.retry
	r.after = after
	if after > 0 && !t.healthy.Load() && !r.armed && !r.open && !r.trial {
		t.armRetryLocked(after)
	}
}

// claimTrial takes the open retry for one connection: false when the
// target is not open for a retry (another connection took it, or its
// state changed since the policy picked it).
func (t *target) claimTrial() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &t.retry
	if !r.open {
		return false
	}
	r.open, r.trial = false, true
	t.updateEligibleLocked()
	return true
}

// dialSucceeded ends a trial that connected: the target is up again. It
// reports whether it changed state (a dial to a target down for active
// probes changes nothing: the probes decide).
func (t *target) dialSucceeded() (changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.retry.trial {
		return false
	}
	t.retry.trial = false
	return t.setHealthyLocked(true)
}

// trialAborted gives back a trial whose dial failed for a local reason:
// it said nothing of the target, so the retry stays open.
func (t *target) trialAborted() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := &t.retry; r.trial {
		r.trial, r.open = false, true
		t.updateEligibleLocked()
	}
}
