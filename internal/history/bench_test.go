package history

import (
	"encoding/json"
	"testing"
)

func BenchmarkTargetRecord(b *testing.B) {
	app, h := NewApp(), NewTarget()
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		k++
		h.Record(at(k, 0), Sample{Connections: uint64(k), BytesUp: uint64(k) << 20, BytesDown: uint64(k) << 24, Active: 3}, app)
	}
}

// The second config's Record of a slot already recorded.
func BenchmarkTargetRecordNoop(b *testing.B) {
	h := NewTarget()
	h.Record(at(0, 0), Sample{Connections: 1}, nil)
	b.ReportAllocs()
	for b.Loop() {
		h.Record(at(0, 0), Sample{Connections: 2}, nil)
	}
}

func BenchmarkAppRecord(b *testing.B) {
	app := NewApp()
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		k++
		app.Record(at(k, 0), 3, Rejections{NoHealthyTarget: uint64(k), DialFailed: uint64(k / 2)})
	}
}

func BenchmarkTargetSnapshot(b *testing.B) {
	h := fullTarget(nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Snapshot()
	}
}

func BenchmarkAppSnapshot(b *testing.B) {
	app := NewApp()
	for k := range Slots {
		app.Record(at(k, 0), 1, Rejections{NoHealthyTarget: uint64(k), RateLimited: uint64(2 * k)})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = app.Snapshot()
	}
}

// One sampling round of a config with 1,000 targets in 10 apps.
func BenchmarkSampleRound1000Targets(b *testing.B) {
	const apps, perApp = 10, 100
	appRings := make([]*App, apps)
	targets := make([]*Target, apps*perApp)
	for i := range appRings {
		appRings[i] = NewApp()
	}
	for i := range targets {
		targets[i] = NewTarget()
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		k++
		now, u := at(k, 0), uint64(k)
		for i, h := range targets {
			h.Record(now, Sample{Connections: u, BytesUp: u << 10, BytesDown: u << 12, Active: 2}, appRings[i/perApp])
		}
		for _, a := range appRings {
			a.Record(now, 200, Rejections{DialFailed: u})
		}
	}
}

// The history of 1,000 busy targets in the status JSON: time to take the
// snapshots and encode them, and the size (bytes per target in the
// metric): json.Marshal, and AppendJSON into one buffer as a status
// handler writing its body by hand would.
func BenchmarkSnapshotJSON1000Targets(b *testing.B) {
	targets := make([]*Target, 1000)
	for i := range targets {
		targets[i] = fullTarget(nil)
	}
	encoders := []struct {
		name string
		enc  func([]Snapshot) ([]byte, error)
	}{
		{"marshal", func(s []Snapshot) ([]byte, error) { return json.Marshal(s) }},
		{"append", func(s []Snapshot) ([]byte, error) {
			out := append(make([]byte, 0, 4<<20), '[')
			for i := range s {
				if i > 0 {
					out = append(out, ',')
				}
				out = s[i].AppendJSON(out)
			}
			return append(out, ']'), nil
		}},
	}
	for _, e := range encoders {
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				snaps := make([]Snapshot, len(targets))
				for i, h := range targets {
					snaps[i] = h.Snapshot()
				}
				out, err := e.enc(snaps)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size)/float64(len(targets)), "JSON-bytes/target")
		})
	}
}

func BenchmarkSparklinePoints(b *testing.B) {
	s := fullTarget(nil).Snapshot().Connections
	b.ReportAllocs()
	for b.Loop() {
		_ = SparklinePoints(s, 120, 24)
	}
}
