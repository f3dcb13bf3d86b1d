package discovery

import (
	"net/netip"
	"testing"
)

// SRV weights go to 65535, target weights to MaxWeight: a tier above it is
// scaled down with its ratios kept, each tier on its own.
func TestFinishScalesEachTierIntoTheWeightRange(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	got := toRecords(finish([]rec{
		{ap: ap("10.0.0.1:80"), prio: 1, weight: 3000},
		{ap: ap("10.0.0.2:80"), prio: 1, weight: 1000},
		{ap: ap("10.0.0.3:80"), prio: 1, weight: 1}, // tiny: still 1
		{ap: ap("10.0.0.4:80"), prio: 1, weight: 65535},
		{ap: ap("10.0.0.4:80"), prio: 1, weight: 65535}, // merged: 131070
		{ap: ap("10.0.0.5:80"), prio: 2, weight: 7},     // backups within range: as they are
		{ap: ap("10.0.0.6:80"), prio: 2, weight: 200},
	}))
	want := []Record{
		{Addr: "10.0.0.1:80", Weight: 6},
		{Addr: "10.0.0.2:80", Weight: 2},
		{Addr: "10.0.0.3:80", Weight: 1},
		{Addr: "10.0.0.4:80", Weight: 256},
		{Addr: "10.0.0.5:80", Weight: 7, Backup: true},
		{Addr: "10.0.0.6:80", Weight: 200, Backup: true},
	}
	if !Equal(got, want) {
		t.Fatalf("finish =\n%v; want\n%v", got, want)
	}
	got = toRecords(finish([]rec{
		{ap: ap("10.0.0.1:80"), weight: 3000},
		{ap: ap("10.0.0.2:80"), weight: 1000},
	}))
	if len(got) != 2 || got[0].Weight != 256 || got[1].Weight != 85 {
		t.Fatalf("weights 3000 and 1000 became %v; want 256 and 85 (3:1 kept)", got)
	}
}
