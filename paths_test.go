package tcpproxy

import (
	"testing"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// The data-path tests run on both paths (datapath.go): the event loops,
// the default, and the goroutine path, forced.

// envGoroutinePath is the path the environment chose for this run
// (CADDY_TCPPROXY_DATAPATH=goroutine runs the whole suite on goroutines).
var envGoroutinePath = goroutinePath.Load()

// onBothPaths runs test once on each data path, as subtests "loop" and
// "goroutine". The path is chosen before the test loads its config: the
// sockets and handlers it opens keep it. When the environment forces the
// goroutine path, only that subtest runs: the run without it covers the
// loops.
func onBothPaths(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	for _, path := range []string{"loop", "goroutine"} {
		t.Run(path, func(t *testing.T) {
			if path == "loop" && envGoroutinePath {
				t.Skip("CADDY_TCPPROXY_DATAPATH=goroutine: the run without it covers the loops")
			}
			goroutinePath.Store(path == "goroutine")
			t.Cleanup(func() { goroutinePath.Store(envGoroutinePath) }) // after the test's own cleanups
			test(t)
		})
	}
}

// onLoops reports whether connections of the app's sockets go to the
// loops in this (sub)test.
func onLoops() bool { return !goroutinePath.Load() }

// pathCounts are how many connections took each path so far, and the
// bytes spliced on each.
type pathCounts struct {
	loop, splice, generic     uint64
	loopSpliced, relaySpliced uint64
}

func countPaths() pathCounts {
	return pathCounts{
		loop: loopProxied.Load(), splice: relay.Paths.Splice.Load(), generic: relay.Paths.Generic.Load(),
		loopSpliced: evloop.SplicedBytes.Load(), relaySpliced: relay.Paths.SplicedBytes.Load(),
	}
}

// since returns the counts from q to p.
func (p pathCounts) since(q pathCounts) pathCounts {
	return pathCounts{p.loop - q.loop, p.splice - q.splice, p.generic - q.generic,
		p.loopSpliced - q.loopSpliced, p.relaySpliced - q.relaySpliced}
}

// raw counts the connections proxied between the raw sockets: on a loop
// or spliced by the relay.
func (p pathCounts) raw() uint64 { return p.loop + p.splice }

// spliced counts the bytes spliced on either path.
func (p pathCounts) spliced() uint64 { return p.loopSpliced + p.relaySpliced }
