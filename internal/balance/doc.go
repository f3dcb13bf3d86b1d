// Package balance picks the target of each new connection: smooth weighted
// round robin, weighted least connections or weighted rendezvous hashing of
// the client IP, over the eligible targets of an app, with backup targets
// that take over only while no primary is eligible.
//
// Typical use:
//
//	var cursor atomic.Uint64 // the app's position, kept across reloads
//	a, b := balance.NewNode("10.0.0.1:5432"), balance.NewNode("10.0.0.2:5432")
//	bal, err := balance.New("round_robin", &cursor)
//	if err != nil { ... }
//	bal.SetMembers([]balance.Member{{Node: a, Weight: 3}, {Node: b, Weight: 1, Backup: true}})
//	...
//	n := bal.Pick(clientIP) // per connection: no lock, no allocation
//	if n == nil { /* nothing eligible */ }
//	n.Active.Add(1); defer n.Active.Add(-1)
//	...
//	if a.SetEligible(false) { // health or admin state changed: every Balancer sees it at its next Pick
//		bal.Refresh() // optional: rebuild now, off the data path
//	}
//
// A Node is the live state of one target (eligibility and active
// connection count); it is meant to be shared by every config that has the
// target, so that state survives reloads. A Balancer is one app's policy
// over its Members (node, weight, backup). Pick reads a derived view (the
// active tier's eligible nodes and, for round_robin, the precomputed
// schedule) through an atomic pointer; a package-wide epoch, bumped by every
// eligibility change, tells Pick when that view is stale and must be
// rebuilt.
package balance
