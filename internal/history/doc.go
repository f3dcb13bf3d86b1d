// Package history keeps the last 15 minutes of a proxy's traffic, per
// target and per app, at 10-second resolution, in rings of a fixed size.
//
// The data path keeps cumulative counters (connections opened, bytes each
// way, rejections) and an active-connections gauge; it does nothing for
// history. One sampler goroutine per config reads those counters every
// Interval and records, per slot, the deltas of the counters and the value
// of the gauge:
//
//	// with the counters, in the shared target and app state:
//	t.hist = history.NewTarget()
//	st.hist = history.NewApp()
//
//	// in Start, one goroutine per config that ends with ctx (cancel it
//	// in Stop, then <-stopped):
//	stopped := history.Sampler{Sample: func(now time.Time) {
//		for _, t := range app.targets {
//			t.hist.Record(now, history.Sample{
//				Connections: t.total.Load(), Active: t.active.Load(),
//				BytesUp: t.up.Load(), BytesDown: t.down.Load(),
//				Rejections: t.dialErrors.Load(),
//			}, st.hist)
//		}
//		st.hist.Record(now, st.active.Load(), history.Rejections{
//			history.NoHealthyTarget: st.noHealthy.Load(), ...})
//	}}.Start(ctx)
//
//	// in the status handler (JSON field "history") and page:
//	snap := t.hist.Snapshot() // or snap.AppendJSON(body) by hand
//	points := history.SparklinePoints(snap.Connections, 120, 24)
//	rates := t.hist.Rates()   // the numbers beside the sparkline
//
// Rings live in the state that outlives a config reload, so during a
// reload two samplers may record the same ring: a slot is identified by
// the wall clock (see SlotOf) and only its first Record counts. A Record
// after a gap spreads the deltas evenly over the slots of the gap (the
// remainder in the newest) and shows the gauge at its value at the end of
// the gap, so a pause between configs is neither a spike nor lost
// traffic; a counter that went backwards (its state recreated) records 0.
package history
