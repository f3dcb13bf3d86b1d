package history

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRecordStoresDeltasAndGauge(t *testing.T) {
	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 5, BytesUp: 100, BytesDown: 1000, Active: 3}, nil)
	h.Record(at(1, 0), Sample{Connections: 12, BytesUp: 150, BytesDown: 1000, Rejections: 2, Active: 1}, nil)
	h.Record(at(2, 0), Sample{Connections: 12, BytesUp: 150, BytesDown: 4000, Rejections: 2, Active: 0}, nil)
	s := h.Snapshot()
	if s.Recorded != 3 || len(s.Connections) != Slots {
		t.Fatalf("recorded %d, %d points; want 3 and %d", s.Recorded, len(s.Connections), Slots)
	}
	// The first Record counts from zero: the ring starts with the counters.
	wantTail(t, "connections", s.Connections, 5, 7, 0)
	wantTail(t, "bytes_up", s.BytesUp, 100, 50, 0)
	wantTail(t, "bytes_down", s.BytesDown, 1000, 0, 3000)
	wantTail(t, "rejections", s.Rejections, 0, 2, 0)
	wantTail(t, "active", s.Active, 3, 1, 0)
	if want := slotEnd(SlotOf(at(2, 0))).Format(time.RFC3339); s.End != want || s.End != "2023-11-14T22:13:40Z" {
		t.Errorf("end = %q, want %q", s.End, want)
	}
}

func TestSlotOfIsNearestEnd(t *testing.T) {
	n := SlotOf(t0)
	for _, c := range []struct {
		off  time.Duration
		want int64
	}{
		{0, n}, {3 * time.Second, n}, {4999 * time.Millisecond, n},
		{-4 * time.Second, n}, {5 * time.Second, n + 1}, {-6 * time.Second, n - 1},
	} {
		if got := SlotOf(t0.Add(c.off)); got != c.want {
			t.Errorf("SlotOf(t0%+v) = n%+d, want n%+d", c.off, got-n, c.want-n)
		}
	}
}

func TestRecordIsIdempotentPerSlot(t *testing.T) {
	h := NewTarget()
	if !h.Record(at(0, 0), Sample{Connections: 10}, nil) {
		t.Fatal("first Record of a slot reported false")
	}
	// Another sampler in the same slot, having seen more connections: a
	// no-op, and what it saw is not lost but counted in the next slot.
	if h.Record(at(0, 3*time.Second), Sample{Connections: 15, Active: 9}, nil) {
		t.Fatal("second Record of the same slot reported true")
	}
	if h.Record(at(-1, 0), Sample{Connections: 20}, nil) {
		t.Fatal("Record of an older slot reported true")
	}
	h.Record(at(1, 0), Sample{Connections: 21, Active: 2}, nil)
	s := h.Snapshot()
	wantTail(t, "connections", s.Connections, 10, 11)
	wantTail(t, "active", s.Active, 0, 2)
	if s.Recorded != 2 {
		t.Errorf("recorded = %d, want 2", s.Recorded)
	}
}

func TestGapIsSpreadOverItsSlots(t *testing.T) {
	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 100, Active: 1}, nil)
	// No sample for three slots (between two configs), then 42 more
	// connections: an equal share in each of the four slots, the
	// remainder in the newest; the gauge as read at the end.
	h.Record(at(4, 0), Sample{Connections: 142, Active: 7}, nil)
	s := h.Snapshot()
	wantTail(t, "connections", s.Connections, 100, 10, 10, 10, 12)
	wantTail(t, "active", s.Active, 1, 7, 7, 7, 7)
	if s.Recorded != 5 {
		t.Errorf("recorded = %d, want 5", s.Recorded)
	}
	if r := h.Rates(); r.ConnectionsPerSec != 1.2 || r.Active != 7 {
		t.Errorf("rates = %+v, want 1.2 connections/s and 7 active", r)
	}
}

func TestGapLongerThanWindow(t *testing.T) {
	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 1}, nil)
	h.Record(at(1, 0), Sample{Connections: 2}, nil)
	// 200 slots without a sample: each gets 1/200 of the growth, and the
	// window shows the newest 90 of them.
	h.Record(at(201, 0), Sample{Connections: 2 + 2000}, nil)
	s := h.Snapshot()
	for i, v := range s.Connections {
		if v != 10 {
			t.Fatalf("connections[%d] = %d, want 10 in every slot: %v", i, v, s.Connections)
		}
	}
	if s.Recorded != Slots {
		t.Errorf("recorded = %d, want %d", s.Recorded, Slots)
	}
}

func TestCounterGoingBackwardsRecordsZero(t *testing.T) {
	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 100, BytesUp: 1 << 40}, nil)
	// The counters' state was recreated: they start again from small
	// values. Not a negative delta, not 2^64 minus something.
	h.Record(at(1, 0), Sample{Connections: 5, BytesUp: 10}, nil)
	h.Record(at(2, 0), Sample{Connections: 15, BytesUp: 30}, nil)
	s := h.Snapshot()
	wantTail(t, "connections", s.Connections, 100, 0, 10)
	wantTail(t, "bytes_up", s.BytesUp, 1<<40, 0, 20)
}

func TestClockSetBack(t *testing.T) {
	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 1}, nil)
	// A step back within the window: those slots are recorded already,
	// so nothing is; the counts wait for the next new slot.
	if h.Record(at(-5, 0), Sample{Connections: 3}, nil) {
		t.Fatal("Record 5 slots back reported true")
	}
	h.Record(at(1, 0), Sample{Connections: 4}, nil)
	wantTail(t, "connections", h.Snapshot().Connections, 1, 3)

	// A step back by more than the window (the wall clock was set back an
	// hour): rather than stop recording for an hour, start over.
	if !h.Record(at(-360, 0), Sample{Connections: 10}, nil) {
		t.Fatal("Record an hour back reported false; want the ring to start over")
	}
	h.Record(at(-359, 0), Sample{Connections: 11}, nil)
	s := h.Snapshot()
	if s.Recorded != 2 || sum(s.Connections) != 7 {
		t.Errorf("after starting over: recorded %d, connections %v; want 2 slots holding 6 and 1", s.Recorded, tail(s.Connections, 3))
	}
	wantTail(t, "connections", s.Connections, 0, 6, 1)
}

func TestSnapshotJSON(t *testing.T) {
	empty, err := json.Marshal(NewTarget().Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if string(empty) != `{"interval":"10s","recorded":0}` {
		t.Errorf("empty ring: %s", empty)
	}

	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 3, Active: 2}, nil)
	b, err := json.Marshal(h.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bytes_up", "bytes_down", "rejections", "rejections_by_reason"} {
		if _, ok := got[k]; ok {
			t.Errorf("all-zero series %q is in the JSON: %s", k, b)
		}
	}
	conns, _ := got["connections"].([]any)
	if len(conns) != Slots || conns[Slots-1] != 3.0 || got["interval"] != "10s" ||
		got["end"] != "2023-11-14T22:13:20Z" || got["recorded"] != 1.0 {
		t.Errorf("JSON = %s", b)
	}
	// Zeros are written as "0,", so a full series is short.
	if !strings.Contains(string(b), `"connections":[0,0,0,`) {
		t.Errorf("connections not a plain int array: %s", b)
	}
}

func TestRecordOfAZeroTimeIsIgnored(t *testing.T) {
	h, app := NewTarget(), NewApp()
	if h.Record(time.Time{}, Sample{Connections: 1}, app) || app.Record(time.Time{}, 1, Rejections{}) {
		t.Error("Record of the zero time reported true")
	}
	if s := h.Snapshot(); s.Recorded != 0 || s.End != "" {
		t.Errorf("after a zero-time Record: %+v", s)
	}
	// The connection is counted by the next real Record.
	h.Record(at(0, 0), Sample{Connections: 1}, app)
	wantTail(t, "connections", h.Snapshot().Connections, 1)
}
