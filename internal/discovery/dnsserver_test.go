package discovery

import (
	"testing"
	"time"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/discovery/dnstest"
)

// The real DNS server of these tests lives in dnstest, shared with the
// root package's tests; these names keep the tests short.
const (
	answer   = dnstest.Answer
	servfail = dnstest.ServFail
	refused  = dnstest.Refused
	drop     = dnstest.Drop
	lame     = dnstest.Lame
)

type testServer = dnstest.Server

var (
	startServer    = dnstest.Start
	deadServer     = dnstest.Dead
	startBlackhole = dnstest.StartBlackhole
	manyA          = dnstest.ManyA
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
