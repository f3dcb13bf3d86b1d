package discovery

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// bigSet serves 1,000 A records (16 KB: truncated over UDP, then TCP).
func bigSet(b *testing.B) (*testServer, Source) {
	srv := startServer(b, "127.0.0.1")
	srv.SetRRs("big.test.", manyA("big.test.", 1000))
	return srv, mustParse(b, "dns:big.test.:80")
}

// BenchmarkLookup1000 is Lookup of a 1,000-record answer from the loopback
// server: Go's resolver, our exchange, sorting and the Records.
func BenchmarkLookup1000(b *testing.B) {
	srv, src := bigSet(b)
	r := NewResolver([]string{srv.Addr}, DefaultTimeout)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		recs, err := src.Lookup(ctx, r)
		if err != nil || len(recs) != 1000 {
			b.Fatal(len(recs), err)
		}
	}
}

// BenchmarkRefreshUnchanged1000 is what the Watcher does on each refresh
// of an unchanged 1,000-record set: lookup plus comparison, no Records.
func BenchmarkRefreshUnchanged1000(b *testing.B) {
	srv, src := bigSet(b)
	r := NewResolver([]string{srv.Addr}, DefaultTimeout)
	ctx := context.Background()
	prev, err := src.Lookup(ctx, r)
	if err != nil {
		b.Fatal(err)
	}
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		rs, err := src.resolve(ctx, r)
		if err != nil || !sameRecords(prev, rs, &scratch) {
			b.Fatal("changed", err)
		}
	}
}

// BenchmarkGoLookupHost1000 is Go's resolver alone on the same answer
// (a plain Dial to the server): the baseline of the two above.
func BenchmarkGoLookupHost1000(b *testing.B) {
	srv, _ := bigSet(b)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		addrs, err := r.LookupHost(ctx, "big.test.")
		if err != nil || len(addrs) != 1000 {
			b.Fatal(len(addrs), err)
		}
	}
}

func records1000() ([]Record, []rec) {
	rs := make([]rec, 1000)
	for i := range rs {
		rs[i] = rec{ap: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80), weight: 1}
	}
	rs = finish(rs)
	return toRecords(rs), rs
}

// BenchmarkSameRecords1000 is the Watcher's comparison alone (unchanged).
func BenchmarkSameRecords1000(b *testing.B) {
	prev, rs := records1000()
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		if !sameRecords(prev, rs, &scratch) {
			b.Fatal("differ")
		}
	}
}

// BenchmarkEqual1000 compares two 1,000-record sets (unchanged).
func BenchmarkEqual1000(b *testing.B) {
	prev, _ := records1000()
	cur := append([]Record(nil), prev...)
	b.ReportAllocs()
	for b.Loop() {
		if !Equal(prev, cur) {
			b.Fatal("differ")
		}
	}
}

// BenchmarkDiff1000 is Diff of 1,000 records with one added, one removed
// and one reweighted.
func BenchmarkDiff1000(b *testing.B) {
	prev, _ := records1000()
	cur := append([]Record(nil), prev[1:]...)
	cur[10].Weight = 5
	cur = append(cur, Record{Addr: "10.9.9.9:80", Weight: 1})
	b.ReportAllocs()
	for b.Loop() {
		added, removed, changed := Diff(prev, cur)
		if len(added) != 1 || len(removed) != 1 || len(changed) != 1 {
			b.Fatal(added, removed, changed)
		}
	}
}
