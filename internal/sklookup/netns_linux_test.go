//go:build linux

package sklookup

import (
	"testing"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/netnstest"
)

// Tests that attach the program run in a network namespace of their own,
// never in the machine's (it has other listeners a route could steal):
// the test re-executes this test binary for itself alone, in a new
// network namespace, and reports the child's result (see netnstest).

// skipOrFail skips where the environment lacks what a test needs, but
// fails in CI (CI is set), which runs as root where everything works.
func skipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	netnstest.SkipOrFail(tb, format, args...)
}

// inNetns reports whether the calling test should run its body: true in a
// child in a private network namespace where sk_lookup is available; false
// in the parent, which has reported the child's outcome as its own. Each
// child has a namespace, and an engine, of its own, so these tests run in
// parallel.
func inNetns(t *testing.T) bool {
	t.Helper()
	if _, child := netnstest.Child(); !child {
		t.Parallel()
	}
	return netnstest.Run(t, Available)
}

// benchInNetns is inNetns for benchmarks: the parent prints the child's
// figures and skips itself.
func benchInNetns(b *testing.B) bool {
	b.Helper()
	return netnstest.Bench(b, Available)
}
