package history

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// AppendJSON appends the snapshot's JSON encoding to b: the same bytes as
// json.Marshal(s), without reflection, for a status handler that writes
// the history of 1,000 targets on every page refresh (the benchmark
// measures both). It is not a MarshalJSON method on purpose: json.Marshal
// re-validates a marshaler's output, which made it slower than plain
// reflection.
func (s Snapshot) AppendJSON(b []byte) []byte {
	b = append(b, `{"interval":`...)
	b = appendString(b, s.Interval)
	if s.End != "" {
		b = append(b, `,"end":`...)
		b = appendString(b, s.End)
	}
	b = append(b, `,"recorded":`...)
	b = strconv.AppendInt(b, int64(s.Recorded), 10)
	b = appendSeries(b, "connections", s.Connections)
	b = appendSeries(b, "active", s.Active)
	b = appendSeries(b, "bytes_up", s.BytesUp)
	b = appendSeries(b, "bytes_down", s.BytesDown)
	b = appendSeries(b, "rejections", s.Rejections)
	if len(s.RejectionsByReason) > 0 {
		b = append(b, `,"rejections_by_reason":{`...)
		first := true
		for _, r := range reasonsByName {
			v, ok := s.RejectionsByReason[r.String()]
			if !ok {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, r.String())
			b = append(b, ':')
			b = appendInts(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// reasonsByName lists the reasons in the order encoding/json writes the
// keys of RejectionsByReason.
var reasonsByName = func() []Reason {
	rs := make([]Reason, NumReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	slices.SortFunc(rs, func(a, b Reason) int { return strings.Compare(a.String(), b.String()) })
	return rs
}()

// appendSeries appends `,"name":[...]`, or nothing for a nil series (as
// omitempty does).
func appendSeries(b []byte, name string, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendInts(b, v)
}

func appendInts(b []byte, v []int64) []byte {
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return append(b, ']')
}

// appendString appends v as a JSON string. The strings of a snapshot are
// plain ASCII; anything else goes through encoding/json to escape it the
// same way.
func appendString(b []byte, v string) []byte {
	for i := range len(v) {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(v)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}
