package tcpproxy

import (
	"context"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/acl"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/clientlimit"
)

// The per-client state of an app: what it costs per connection, that it
// stays bounded whatever the number of client IPs, and that it goes with
// the app.

// floodIP is the i-th of many distinct client IPs: IPv4 for even i, IPv6
// for odd i.
func floodIP(i int) netip.Addr {
	if i%2 == 0 {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

// onCollected reports, through the returned flag, when p has been
// garbage collected.
func onCollected[T any](p *T) *atomic.Bool {
	var done atomic.Bool
	runtime.AddCleanup(p, func(d *atomic.Bool) { d.Store(true) }, &done)
	return &done
}

// waitCollected runs the collector until done is set.
func waitCollected(t *testing.T, what string, done *atomic.Bool) {
	t.Helper()
	waitFor(t, 10*time.Second, what+" garbage collected", func() bool {
		runtime.GC()
		return done.Load()
	})
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestClientStateIsBoundedUnderAFloodAndFreedWithTheHandler provisions a
// handler as Caddy does and sends 100,000 distinct client IPs through its
// admission checks, each connection ending at once: the per-client state
// stays within the limiter's capacity, and it is garbage once the handler
// is cleaned up (its config unloaded).
func TestClientStateIsBoundedUnderAFloodAndFreedWithTheHandler(t *testing.T) {
	const clients = 100_000
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{App: "flood", Upstreams: Upstreams{Targets: []TargetConfig{{Address: "127.0.0.1:9"}},
		HealthChecks: &HealthChecks{Disabled: true},
		Clients: Clients{MaxConnectionsPerClient: 10, Deny: []string{"192.0.2.0/24"},
			ClientRateLimit: &ClientRateLimit{Connections: 100, Window: Duration(10 * time.Second)}}}}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	lim := h.clients.limiter
	if lim.Capacity() != clientlimit.DefaultCapacity {
		t.Errorf("the app's limiter tracks %d client IPs, want the default %d", lim.Capacity(), clientlimit.DefaultCapacity)
	}
	freed := onCollected(lim)

	before := heapInUse()
	for i := range clients {
		s := session{client: netip.AddrPortFrom(floodIP(i), 40000)}
		if reason, refused, acquired := h.admit(&s); refused || !acquired {
			t.Fatalf("client %d (%s): refused (%v, %s) or not counted (%v)", i, floodIP(i), refused, reason, acquired)
		}
		lim.Release(s.client.Addr())
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d client IPs: %d tracked (capacity %d), %d evicted, heap grown by %.2f MiB",
		clients, lim.Tracked(), lim.Capacity(), lim.Evictions(), float64(grown)/(1<<20))
	if lim.Tracked() > lim.Capacity() {
		t.Errorf("%d client IPs tracked, more than the capacity %d", lim.Tracked(), lim.Capacity())
	}
	if grown > 8<<20 {
		t.Errorf("heap grew by %d bytes for %d client IPs, want at most 8 MiB", grown, clients)
	}

	_ = h.Cleanup()
	h, lim = nil, nil
	waitCollected(t, "the limiter of a cleaned-up handler", freed)
}

// TestClientLimiterGoesWithItsApp: unloading the config of an app (a
// reload without it) frees its per-client state.
func TestClientLimiterGoesWithItsApp(t *testing.T) {
	b := newBackend(t, "b")
	ports := freePorts(t, 2)
	gone := app{"name": "gone", "ports": []int{ports[0]}, "bind": []string{"127.0.0.1"}, "targets": addrs(b),
		"max_connections_per_client": 5}
	stays := app{"name": "stays", "ports": []int{ports[1]}, "bind": []string{"127.0.0.1"}, "targets": addrs(b)}
	loadConfig(t, proxyConfig(gone, stays))
	mustServe(t, "127.0.0.2", hostPort(ports[0]), nil).Close()
	freed := onCollected(appStateOf(t, "gone").limiter)
	if err := tryLoad(proxyConfig(stays)); err != nil {
		t.Fatal(err)
	}
	waitCollected(t, "the limiter of an unloaded app", freed)
}

// benchHandler is a handler with the given client checks, as Provision
// compiles them, for the benchmarks and allocation tests.
func benchHandler(tb testing.TB, c Clients) *Handler {
	tb.Helper()
	cc, err := newClientChecks(&c, &appState{name: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	return &Handler{App: "bench", clients: cc, logger: zap.NewNop()}
}

// manyEntries is n IPv4 /24s and n IPv6 /32s, holding none of the
// benchmark's clients (10.1.2.3 and the floodIPs).
func manyEntries(n int) []string {
	out := make([]string, 0, 2*n)
	for i := range n {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>8), byte(i), 0}), 24).String(),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0x3f, 0xff, byte(i >> 8), byte(i)}), 32).String())
	}
	return out
}

// allChecks sets every check but the PROXY header: allow and deny lists
// of 2,000 entries each (the client is allowed) and both limits.
func allChecks() Clients {
	return Clients{Allow: append(manyEntries(1000), "10.0.0.0/8", "2001:db8::/32"), Deny: manyEntries(1000),
		MaxConnectionsPerClient: 100, ClientRateLimit: &ClientRateLimit{Connections: 1 << 30, Window: Duration(10 * time.Second)}}
}

// admitAndEnd is what one admitted connection costs the checks: admit,
// and the release when it ends.
func (h *Handler) admitAndEnd(tb testing.TB, s *session) {
	reason, refused, acquired := h.admit(s)
	if refused {
		tb.Fatalf("refused: %s", reason)
	}
	if acquired {
		h.clients.limiter.Release(s.client.Addr())
	}
}

func TestClientChecksAllocateNothing(t *testing.T) {
	for name, c := range map[string]Clients{"unset": {}, "all but the PROXY header": allChecks()} {
		h := benchHandler(t, c)
		s := session{client: netip.MustParseAddrPort("10.1.2.3:40000")}
		if n := testing.AllocsPerRun(1000, func() { h.admitAndEnd(t, &s) }); n != 0 {
			t.Errorf("%s: %v allocations per connection, want 0", name, n)
		}
	}
}

// BenchmarkClientChecks is the cost of the per-client checks of one
// connection, apart from reading a PROXY header (see
// BenchmarkProxyHeader): none set; allow and deny of 2,000 entries each
// and both limits, for one client IP or for ever new ones.
func BenchmarkClientChecks(b *testing.B) {
	for name, c := range map[string]Clients{"unset": {}, "all/same-ip": allChecks()} {
		b.Run(name, func(b *testing.B) {
			h := benchHandler(b, c)
			s := session{client: netip.MustParseAddrPort("10.1.2.3:40000")}
			b.ReportAllocs()
			for b.Loop() {
				h.admitAndEnd(b, &s)
			}
		})
	}
	b.Run("all/new-ips", func(b *testing.B) {
		h := benchHandler(b, allChecks())
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s := session{client: netip.AddrPortFrom(floodIP(i), 40000)}
			h.admitAndEnd(b, &s)
		}
	})
}

// TestManyEntriesAreMissed checks the benchmark's premise: its lists of
// entries hold neither test client.
func TestManyEntriesAreMissed(t *testing.T) {
	set, err := acl.Parse(manyEntries(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []netip.Addr{netip.MustParseAddr("10.1.2.3"), floodIP(0), floodIP(1), floodIP(1<<20 + 1)} {
		if set.Contains(ip) {
			t.Errorf("%s is in the benchmark's deny list", ip)
		}
	}
	if set.Len() != 2000 {
		t.Errorf("%d entries, want 2000", set.Len())
	}
}
