package history

import "time"

// Snapshot is a ring's history as the status API shows it. Every series
// has Slots points, oldest first, the last one being the slot that ends
// at End; a counter's point is how much it grew during that slot (divide
// by Interval for a rate), the gauge's is the value sampled at the slot's
// end. To keep the JSON of 1,000 targets small, a series that is all zero
// is left out (nil): read a missing series as Slots zeros.
type Snapshot struct {
	// Interval is the length of a slot, "10s".
	Interval string `json:"interval"`
	// End is when the newest slot ended, RFC 3339 in UTC; empty before
	// the first Record.
	End string `json:"end,omitempty"`
	// Recorded is how many of the newest slots hold data; the older
	// ones predate the first Record and are zero.
	Recorded int `json:"recorded"`

	Connections []int64 `json:"connections,omitempty"`
	Active      []int64 `json:"active,omitempty"`
	BytesUp     []int64 `json:"bytes_up,omitempty"`
	BytesDown   []int64 `json:"bytes_down,omitempty"`
	// Rejections are a target's failed dials, or all of an app's
	// rejections.
	Rejections []int64 `json:"rejections,omitempty"`
	// RejectionsByReason (apps only) has the series of each reason that
	// rejected any connection in the window, keyed by Reason.String.
	RejectionsByReason map[string][]int64 `json:"rejections_by_reason,omitempty"`
}

// Rates are the per-second rates over the newest recorded slot, and the
// active connections sampled at its end.
type Rates struct {
	ConnectionsPerSec float64 `json:"connections_per_sec"`
	BytesUpPerSec     float64 `json:"bytes_up_per_sec"`
	BytesDownPerSec   float64 `json:"bytes_down_per_sec"`
	RejectionsPerSec  float64 `json:"rejections_per_sec"`
	Active            int64   `json:"active"`
}

func (r *ring) snapshot(reasons bool) Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{Interval: Interval.String(), Recorded: r.opened}
	if r.newest == 0 {
		return s
	}
	s.End = slotEnd(r.newest).Format(time.RFC3339)
	series := r.columns()
	s.Connections = series[colConnections]
	s.Active = series[colActive]
	s.BytesUp = series[colBytesUp]
	s.BytesDown = series[colBytesDown]
	s.Rejections = series[colRejections]
	if reasons && s.Rejections != nil {
		s.RejectionsByReason = make(map[string][]int64)
		for i := range NumReasons {
			if v := series[targetCols+int(i)]; v != nil {
				s.RejectionsByReason[i.String()] = v
			}
		}
	}
	return s
}

// columns returns each column of the window oldest first, nil for a
// column that is all zero, copied in one pass into one allocation.
func (r *ring) columns() [appCols][]int64 {
	buf := make([]int64, r.cols*Slots) // column c at buf[c*Slots:]
	var nonzero [appCols]bool
	first := r.newest - Slots + 1
	for i := range Slots {
		m := first + int64(i)
		if m <= 0 {
			continue // before the epoch: only in tests with tiny times
		}
		for c, v := range r.row(m) {
			buf[c*Slots+i] = v
			nonzero[c] = nonzero[c] || v != 0
		}
	}
	var out [appCols][]int64
	for c := range r.cols {
		if nonzero[c] {
			out[c] = buf[c*Slots : (c+1)*Slots : (c+1)*Slots]
		}
	}
	return out
}

func (r *ring) rates() Rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.newest == 0 {
		return Rates{}
	}
	row, sec := r.row(r.newest), Interval.Seconds()
	return Rates{
		ConnectionsPerSec: float64(row[colConnections]) / sec,
		BytesUpPerSec:     float64(row[colBytesUp]) / sec,
		BytesDownPerSec:   float64(row[colBytesDown]) / sec,
		RejectionsPerSec:  float64(row[colRejections]) / sec,
		Active:            row[colActive],
	}
}
