package history

import (
	"strconv"
	"testing"
)

func TestSparklinePoints(t *testing.T) {
	for _, c := range []struct {
		name   string
		series []int64
		w, h   float64
		want   string
	}{
		{"scaled to the maximum", []int64{0, 5, 10}, 100, 20, "0,20 50,10 100,0"},
		{"one decimal", []int64{0, 1, 3}, 10, 10, "0,10 5,6.7 10,0"},
		{"halves", []int64{0, 1, 2}, 10, 3, "0,3 5,1.5 10,0"},
		{"idle is flat at the bottom", []int64{0, 0, 0, 0}, 30, 8, "0,8 10,8 20,8 30,8"},
		{"top is at least 1", []int64{0, 1}, 10, 8, "0,8 10,0"},
		{"negative counts as 0", []int64{-5, 4}, 10, 8, "0,8 10,0"},
		{"lone point at the right", []int64{7}, 90, 20, "90,0"},
		{"empty", nil, 90, 20, ""},
		{"big values", []int64{1 << 40, 1 << 39, 0}, 89, 24, "0,0 44.5,12 89,24"},
	} {
		if got := SparklinePoints(c.series, c.w, c.h); got != c.want {
			t.Errorf("%s: SparklinePoints(%v, %v, %v) = %q, want %q", c.name, c.series, c.w, c.h, got, c.want)
		}
	}
}

func TestSparklineOfAFullSnapshot(t *testing.T) {
	h := NewTarget()
	for k := range Slots {
		h.Record(at(k, 0), Sample{Connections: uint64(k * (k + 1) / 2)}, nil) // grows by k
	}
	s := h.Snapshot()
	got := SparklinePoints(s.Connections, 178, 89)
	// Slot k holds k: a straight line from the bottom left to the top
	// right, 2 px right and 1 px up per point.
	want := ""
	for k := range Slots {
		if k > 0 {
			want += " "
		}
		want += strconv.Itoa(2*k) + "," + strconv.Itoa(89-k)
	}
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
