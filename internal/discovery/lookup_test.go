package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

const testTimeout = 200 * time.Millisecond

func mustParse(t testing.TB, spec string) Source {
	t.Helper()
	s, ok, err := Parse(spec)
	if !ok || err != nil {
		t.Fatalf("Parse(%q) = %v, %v", spec, ok, err)
	}
	return s
}

func lookup(t testing.TB, r *net.Resolver, spec string) ([]Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return mustParse(t, spec).Lookup(ctx, r)
}

func TestLookupDNS(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "db.test.",
		"db.test. 60 IN A 10.0.0.10",
		"db.test. 60 IN A 10.0.0.2",
		"db.test. 60 IN AAAA fd00::1",
		"db.test. 60 IN AAAA ::ffff:10.0.0.2", // IPv4-mapped: the same as the A record
		"db.test. 60 IN A 10.0.0.2",           // listed twice
	)
	r := NewResolver([]string{srv.Addr}, testTimeout)
	got, err := lookup(t, r, "dns:db.test:5432")
	want := []Record{
		{Addr: "10.0.0.2:5432", Weight: 1},
		{Addr: "10.0.0.10:5432", Weight: 1},
		{Addr: "[fd00::1]:5432", Weight: 1},
	}
	if err != nil || !Equal(got, want) {
		t.Fatalf("Lookup = %v, %v; want %v", got, err, want)
	}
}

// TestGoResolverFacts pins down what Go's resolver itself returns for each
// kind of answer, against the real server: the facts Lookup is built on.
func TestGoResolverFacts(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "empty.test.", "empty.test. 60 IN TXT \"no address here\"")
	plain := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dnsErr := func(err error) *net.DNSError {
		t.Helper()
		var de *net.DNSError
		if !errors.As(err, &de) {
			t.Fatalf("error %v (%T) is no *net.DNSError", err, err)
		}
		return de
	}

	// NXDOMAIN and NOERROR-without-records: the very same error.
	_, errNX := plain.LookupHost(ctx, "missing.test.")
	_, errEmpty := plain.LookupHost(ctx, "empty.test.")
	nx, empty := dnsErr(errNX), dnsErr(errEmpty)
	if !nx.IsNotFound || !empty.IsNotFound || nx.Err != empty.Err || nx.IsTemporary || empty.IsTemporary {
		t.Errorf("Go: NXDOMAIN %+v, NOERROR empty %+v: expected the same IsNotFound error", nx, empty)
	}
	_, _, errNX = plain.LookupSRV(ctx, "", "", "missing.test.")
	_, _, errEmpty = plain.LookupSRV(ctx, "", "", "empty.test.")
	nx, empty = dnsErr(errNX), dnsErr(errEmpty)
	if !nx.IsNotFound || !empty.IsNotFound || nx.Err != empty.Err {
		t.Errorf("Go SRV: NXDOMAIN %+v, NOERROR empty %+v: expected the same IsNotFound error", nx, empty)
	}
	t.Logf("Go: NXDOMAIN and an empty NOERROR both give %q, IsNotFound", nx.Err)

	srv.SetMode(servfail)
	_, err := plain.LookupHost(ctx, "empty.test.")
	if de := dnsErr(err); de.IsNotFound || !de.IsTemporary || de.IsTimeout {
		t.Errorf("Go SERVFAIL: %+v; want IsTemporary only", de)
	}
	t.Logf("Go: SERVFAIL gives %q, IsTemporary", dnsErr(err).Err)

	srv.SetMode(lame)
	_, err = plain.LookupHost(ctx, "empty.test.")
	if de := dnsErr(err); de.IsNotFound {
		t.Errorf("Go lame referral: %+v; want a failure, not IsNotFound", de)
	}
	t.Logf("Go: NOERROR empty without AA and RA gives %q (a failure)", dnsErr(err).Err)

	srv.SetMode(drop)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	_, err = plain.LookupHost(short, "empty.test.")
	if de := dnsErr(err); !de.IsTimeout || de.IsNotFound {
		t.Errorf("Go, no answer: %+v; want IsTimeout", de)
	}
	t.Logf("Go: no answer gives %q, IsTimeout", dnsErr(err).Err)
}

func TestLookupNotFoundVersusEmpty(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "empty.test.", "empty.test. 60 IN TXT \"no address here\"")
	srv.Set(t, "_pg._tcp.empty.test.") // exists, no record at all
	r := NewResolver([]string{srv.Addr}, testTimeout)

	for _, spec := range []string{"dns:empty.test:80", "srv:_pg._tcp.empty.test"} {
		got, err := lookup(t, r, spec)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("%s (NOERROR, no record): %v, %v; want an empty set and no error", spec, got, err)
		}
	}
	for _, spec := range []string{"dns:missing.test:80", "srv:_pg._tcp.missing.test"} {
		got, err := lookup(t, r, spec)
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound || got != nil {
			t.Errorf("%s (NXDOMAIN): %v, %v; want an IsNotFound *net.DNSError", spec, got, err)
		} else if de.Server != srv.Addr {
			t.Errorf("%s: error %q names server %q; want the one that answered, %s", spec, err, de.Server, srv.Addr)
		}
	}

	// A lame referral is no proof the name exists: a failure, and the next
	// resolver is asked. Its NXDOMAIN stays a failure.
	srv.SetMode(lame)
	if got, err := lookup(t, r, "dns:empty.test:80"); err == nil {
		t.Errorf("lame referral: %v, nil; want an error", got)
	}
	second := startServer(t, "127.0.0.2")
	r2 := NewResolver([]string{srv.Addr, second.Addr}, testTimeout)
	got, err := lookup(t, r2, "dns:empty.test:80")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound || de.Server != second.Addr {
		t.Errorf("lame referral, then NXDOMAIN from %s: %v, %v; want that NXDOMAIN", second.Addr, got, err)
	}
	// SERVFAIL.
	srv.SetMode(servfail)
	_, err = lookup(t, r, "dns:empty.test:80")
	if !errors.As(err, &de) || !de.Temporary() || de.IsNotFound {
		t.Errorf("SERVFAIL: %v; want a temporary *net.DNSError", err)
	}
	// No answer.
	srv.SetMode(drop)
	_, err = lookup(t, r, "srv:_pg._tcp.empty.test")
	if !errors.As(err, &de) || !de.Timeout() || !strings.Contains(err.Error(), srv.Addr+" (i/o timeout)") {
		t.Errorf("no answer: %v; want a timeout naming %s", err, srv.Addr)
	}
}

// With StrictErrors a refresh where only AAAA fails must fail, not return
// the IPv4 half (which would drop every IPv6 target until the next one).
func TestLookupHalfFailedIsFailure(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.1", "db.test. 60 IN AAAA fd00::1")
	srv.SetTypeMode(28 /* AAAA */, servfail)
	r := NewResolver([]string{srv.Addr}, testTimeout)
	if got, err := lookup(t, r, "dns:db.test:80"); err == nil {
		t.Fatalf("AAAA SERVFAIL: got %v, nil; want an error", got)
	}
}

func TestLookupSRV(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.Set(t, "_pg._tcp.db.test.",
		"_pg._tcp.db.test. 60 IN SRV 10 5 5432 a.db.test.",
		"_pg._tcp.db.test. 60 IN SRV 10 0 5433 b.db.test.",    // weight 0 counts as 1
		"_pg._tcp.db.test. 60 IN SRV 20 1000 5432 c.db.test.", // the backups' largest: scaled to 256
		"_pg._tcp.db.test. 60 IN SRV 30 1 6000 a.db.test.",    // a third level: backup too
		"_pg._tcp.db.test. 60 IN SRV 10 1 5432 gone.db.test.", // NXDOMAIN target: dropped
		"_pg._tcp.db.test. 60 IN SRV 10 1 5432 noaddr.db.test.",
		"_pg._tcp.db.test. 60 IN SRV 10 3 5432 a2.db.test.", // same address as a: weights add up
	)
	srv.Set(t, "a.db.test.", "a.db.test. 60 IN A 10.0.0.1", "a.db.test. 60 IN AAAA fd00::1")
	srv.Set(t, "a2.db.test.", "a2.db.test. 60 IN A 10.0.0.1")
	srv.Set(t, "b.db.test.", "b.db.test. 60 IN A 10.0.0.2")
	srv.Set(t, "c.db.test.", "c.db.test. 60 IN A 10.0.0.3", "c.db.test. 60 IN A 10.0.0.4")
	srv.Set(t, "noaddr.db.test.")
	r := NewResolver([]string{srv.Addr}, testTimeout)

	got, err := lookup(t, r, "srv:_pg._tcp.db.test")
	want := []Record{
		{Addr: "10.0.0.1:5432", Weight: 8},
		{Addr: "10.0.0.2:5433", Weight: 1},
		{Addr: "[fd00::1]:5432", Weight: 5},
		{Addr: "10.0.0.1:6000", Weight: 1, Backup: true},
		{Addr: "10.0.0.3:5432", Weight: 256, Backup: true},
		{Addr: "10.0.0.4:5432", Weight: 256, Backup: true},
		{Addr: "[fd00::1]:6000", Weight: 1, Backup: true},
	}
	if err != nil || !Equal(got, want) {
		t.Fatalf("Lookup =\n%v, %v; want\n%v", got, err, want)
	}

	// Only backups' priorities left: the lowest present is primary.
	srv.Set(t, "_pg._tcp.db.test.", "_pg._tcp.db.test. 60 IN SRV 20 1 5432 c.db.test.", "_pg._tcp.db.test. 60 IN SRV 10 1 5432 gone.db.test.")
	got, err = lookup(t, r, "srv:_pg._tcp.db.test")
	if err != nil || len(got) != 2 || got[0].Backup || got[1].Backup {
		t.Fatalf("Lookup = %v, %v; want 10.0.0.3 and .4 as primaries", got, err)
	}

	// A target that cannot be resolved for a temporary reason fails the whole lookup.
	srv.Set(t, "_pg._tcp.db.test.", "_pg._tcp.db.test. 60 IN SRV 10 1 5432 a.db.test.")
	srv.SetTypeMode(1 /* A */, servfail)
	if got, err := lookup(t, r, "srv:_pg._tcp.db.test"); err == nil || !strings.Contains(err.Error(), "SRV target a.db.test.") {
		t.Fatalf("target SERVFAIL: %v, %v; want an error naming the target", got, err)
	}
	srv.SetTypeMode(1, answer)

	// "." : the service is decidedly not offered.
	srv.Set(t, "_pg._tcp.db.test.", "_pg._tcp.db.test. 60 IN SRV 0 0 0 .")
	if got, err := lookup(t, r, "srv:_pg._tcp.db.test"); err != nil || len(got) != 0 {
		t.Fatalf(`target ".": %v, %v; want an empty set`, got, err)
	}
}

// Go does not read the additional section of an SRV answer: many targets
// are resolved each with its own queries, a few at a time.
func TestLookupSRVManyTargets(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	var rrs []string
	for i := range 50 {
		name := fmt.Sprintf("t%d.db.test.", i)
		rrs = append(rrs, fmt.Sprintf("_x._tcp.db.test. 60 IN SRV 1 1 %d %s", 1000+i, name))
		srv.Set(t, name, fmt.Sprintf("%s 60 IN A 10.0.1.%d", name, i))
	}
	srv.Set(t, "_x._tcp.db.test.", rrs...)
	r := NewResolver([]string{srv.Addr}, testTimeout)
	got, err := lookup(t, r, "srv:_x._tcp.db.test")
	if err != nil || len(got) != 50 {
		t.Fatalf("Lookup = %d records, %v; want 50", len(got), err)
	}
	for i, rec := range got {
		if want := fmt.Sprintf("10.0.1.%d:%d", i, 1000+i); rec.Addr != want {
			t.Fatalf("record %d is %v; want %s (numeric address order)", i, rec, want)
		}
	}
}
