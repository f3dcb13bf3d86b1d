package history

import (
	"encoding/json"
	"testing"
)

// AppendJSON writes exactly what encoding/json does.
func TestAppendJSONIsEncodingJSON(t *testing.T) {
	app := NewApp()
	tg := fullTarget(app)
	for k := range Slots {
		app.Record(at(k, 0), int64(k), Rejections{Denied: uint64(k), BadProxyHeader: uint64(3 * k), RateLimited: 1})
	}
	weird := Snapshot{Interval: "a\"b\\c<>&\x01\u00e9", End: "\u2028", Active: []int64{-1, 0, 1 << 62}}
	for name, s := range map[string]Snapshot{
		"target": tg.Snapshot(), "app": app.Snapshot(), "empty": NewApp().Snapshot(), "escapes": weird,
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := s.AppendJSON([]byte("x")); string(got) != "x"+string(want) {
			t.Errorf("%s:\ngot  %s\nwant x%s", name, got, want)
		}
	}
}
