// Package clientlimit enforces per-client-IP limits on new connections:
// max_connections_per_client (open connections of one IP) and
// client_rate_limit (new connections of one IP in any sliding window).
//
//	lim, err := clientlimit.New(clientlimit.Limits{MaxConcurrent: 10, Rate: 100, Window: 10 * time.Second})
//	...
//	switch v := lim.Acquire(clientIP, clientlimit.Now()); v {
//	case clientlimit.OK:
//		defer lim.Release(clientIP)
//		// proxy the connection
//	default:
//		// close it at once; v.String() is the reason: "client_limit" or "rate_limited"
//	}
//
// A config reload calls Update on the same Limiter: connections admitted
// before it are released on it, and the rate history carries over.
//
// # The rate guarantee
//
// Each client IP has a ring of 8 counters, one per slot of Window/7 (rounded
// up). A connection is admitted only while the ring's total, which counts
// every admission of the last Window and some up to one slot older, is below
// Rate. So in no window of length Window (open or closed at either end) are
// more than Rate connections of one IP admitted, as with an exact sliding
// log; the price is that an admission may hold its place up to Window/7
// longer than an exact log would. A refused attempt counts nowhere, and a
// client is served again once its admissions have aged out.
//
// # What bounds the memory
//
// The IPs are spread over 64 shards by a seeded hash; each shard has its own
// lock and table, so there is no global lock. A shard keeps at most
// capacity/64 entries (DefaultCapacity: 1,024 a shard, 65,536 in all) of
// 80 bytes each, table included (5 MiB in all), allocated as it fills. An
// entry holding an open connection is never dropped, since its count must
// not be lost; if every entry of a full shard holds one, the shard grows,
// and drops entries and shrinks again as those connections end. So a shard
// holds at most max(capacity/64, IPs of that shard with open connections)
// entries, and the Limiter at most capacity plus the number of client IPs
// with open connections: a flood of distinct source addresses costs at most
// the capacity, and past it no more entries than there are open
// connections, each of which costs far more elsewhere (a socket, buffers, a
// goroutine). An entry with no open connection is dropped at once when it
// has no rate history (always so without client_rate_limit).
//
// # When a shard is full
//
// A new IP in a full shard takes the place of an entry with no open
// connection: one whose rate history has run out if one is among the
// least recently used, else the least recently used (used: admitted,
// refused or released). This is what HAProxy's stick tables do. The dropped
// client's rate history is forgotten, which can only let it in more easily;
// Evictions counts these.
//
// What an attacker rotating source IPs can do: every fresh IP gets a full
// budget, as it would anyway with per-IP limits. No legitimate client is
// ever refused because of the attacker: refusals come only from the
// client's own connections and history, and open-connection counts are
// never dropped. The worst an attacker can do is flush a legitimate (or its
// own) IP's rate history, which takes about capacity new IPs within one
// Window, as it cannot tell which IPs share a shard (the hash seed is
// random); clearing one IP's history that way gains the attacker at most
// Rate connections for tens of thousands spent. Refusing new IPs instead
// would let such a flood lock every new client out; admitting them
// untracked would lose their connection counts.
//
// # Cost
//
// Acquire and Release lock one shard and do not allocate for an IP already
// tracked. A new IP allocates only when its shard's table doubles. There is
// no goroutine and nothing to stop: a Limiter no longer referenced is freed
// by the garbage collector.
package clientlimit
