// Package discovery turns target addresses that name DNS records —
// "srv:<name>" and "dns:<host>:<port>" — into sets of targets, and keeps
// them current in the background.
//
// Typical use, per app:
//
//	src, ok, err := discovery.Parse("srv:_pg._tcp.db.internal")
//	// !ok: a plain host:port; err: a bad spec, names the problem
//	servers, err := discovery.ParseResolvers([]string{"10.0.0.2:53", "10.0.0.3"})
//	w := discovery.NewWatcher(discovery.Config{
//		Sources:  []discovery.Source{src},
//		Resolver: discovery.NewResolver(servers, discovery.DefaultTimeout),
//		Refresh:  30 * time.Second,
//	}, discovery.Handler{
//		Change:  func(source string, recs []discovery.Record) { /* new set */ },
//		Fail:    func(source string, err error, streakStart bool) { /* warn if streakStart */ },
//		Recover: func(source string, failures int) { /* info */ },
//	})
//	go w.Run(ctx) // first lookups at once, then every Refresh; ends with ctx
//	select { // serve with the initial sets if DNS answers quickly
//	case <-w.Ready():
//	case <-time.After(2 * time.Second):
//	}
//
// Lookups use Go's own resolver through a Dial that does each exchange
// itself (see NewResolver): the configured resolvers in order with
// failover, UDP then TCP on truncation. No DNS library is involved.
//
// Semantics (SPEC, "Targets from DNS"): each A/AAAA address is a record of
// its own. A failed lookup — no answer, SERVFAIL, NXDOMAIN — keeps the last
// good set; a successful answer without records (NOERROR, empty) empties
// it. Go's resolver returns the same error for NXDOMAIN and for an empty
// NOERROR; a resolver from NewResolver sees the response codes go by and
// Lookup tells the two apart (see Source.Lookup).
//
// Cost: Go sorts the addresses of a host lookup by RFC 6724, which opens
// and closes one UDP socket per address to find its source address. A
// 1,000-address name costs about 30 ms and 11,000 allocations per lookup
// on the development machine, all but about a thousand of them inside Go's
// resolver.
// An unchanged refresh allocates nothing more in this package; see the
// benchmarks.
package discovery
