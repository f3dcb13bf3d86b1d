package discovery

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A set too large for a UDP answer comes truncated; Go asks again over TCP.
func TestTruncatedAnswerFallsBackToTCP(t *testing.T) {
	srv := startServer(t, "127.0.0.1")
	srv.SetRRs("big.test.", manyA("big.test.", 300)) // ~4.8 KB of answers
	r := NewResolver([]string{srv.Addr}, testTimeout)
	got, err := lookup(t, r, "dns:big.test:80")
	if err != nil || len(got) != 300 {
		t.Fatalf("Lookup = %d records, %v; want 300", len(got), err)
	}
	if srv.TCPQueries.Load() == 0 {
		t.Fatalf("no TCP query reached the server (UDP %d): the truncated answer was not retried over TCP", srv.UDPQueries.Load())
	}
	for i, rec := range got {
		if want := fmt.Sprintf("10.0.%d.%d:80", i>>8, i&0xff); rec.Addr != want {
			t.Fatalf("record %d = %v; want %s", i, rec, want)
		}
	}
}

func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(t *testing.T) string
	}{
		{"refused", func(t *testing.T) string { return deadServer(t, "127.0.0.2") }},
		{"silent", func(t *testing.T) string { return startBlackhole(t, "127.0.0.2").Addr }},
		{"servfail", func(t *testing.T) string {
			s := startServer(t, "127.0.0.2")
			s.SetMode(servfail)
			return s.Addr
		}},
		{"refused rcode", func(t *testing.T) string {
			s := startServer(t, "127.0.0.2")
			s.SetMode(refused)
			return s.Addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := startServer(t, "127.0.0.3")
			good.Set(t, "db.test.", "db.test. 60 IN A 10.0.0.1")
			r := NewResolver([]string{tc.first(t), good.Addr}, testTimeout)
			got, err := lookup(t, r, "dns:db.test:80")
			if err != nil || len(got) != 1 || got[0].Addr != "10.0.0.1:80" {
				t.Fatalf("Lookup = %v, %v; want 10.0.0.1:80 from the second resolver", got, err)
			}
		})
	}
}

// Every resolver failing: the error names each and why.
func TestAllResolversFail(t *testing.T) {
	dead, hole := deadServer(t, "127.0.0.2"), startBlackhole(t, "127.0.0.3")
	r := NewResolver([]string{dead, hole.Addr}, testTimeout)
	_, err := lookup(t, r, "dns:db.test:80")
	if err == nil || !strings.Contains(err.Error(), dead+" (connection refused)") || !strings.Contains(err.Error(), hole.Addr+" (i/o timeout)") {
		t.Fatalf("error %v; want one naming %s (refused) and %s (timeout)", err, dead, hole.Addr)
	}
}

// After a truncated answer from the second resolver, TCP goes straight to
// it instead of waiting again on the silent first one.
func TestTCPRetryAsksTheServerThatTruncated(t *testing.T) {
	hole := startBlackhole(t, "127.0.0.2")
	srv := startServer(t, "127.0.0.3")
	srv.SetRRs("big.test.", manyA("big.test.", 300))
	r := NewResolver([]string{hole.Addr, srv.Addr}, testTimeout)
	got, err := lookup(t, r, "dns:big.test:80")
	if err != nil || len(got) != 300 {
		t.Fatalf("Lookup = %d records, %v; want 300", len(got), err)
	}
	if n := hole.TCPConns.Load(); n != 0 || srv.TCPQueries.Load() == 0 {
		t.Fatalf("TCP connections to the silent resolver: %d, TCP queries to the answering one: %d; want 0 and > 0", n, srv.TCPQueries.Load())
	}
}

// Cancelling a lookup (the app stopping) ends it at once, not after the
// per-server timeouts.
func TestLookupCancel(t *testing.T) {
	srv := startServer(t, "127.0.0.2")
	srv.SetMode(drop)
	r := NewResolver([]string{srv.Addr}, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := mustParse(t, "srv:_x._tcp.db.test").Lookup(ctx, r)
		done <- err
	}()
	waitFor(t, "the query to reach the server", func() bool { return srv.Queries() > 0 })
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled lookup returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lookup still running 5s after its context was cancelled (per-server timeout is 1m)")
	}
}
