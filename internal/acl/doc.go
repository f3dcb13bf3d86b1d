// Package acl answers "is this client address in that list of IPs and CIDRs?"
// fast enough to ask on every accepted connection, whatever the list's size.
//
// It serves the per-app `allow` and `deny` lists and the trusted sources of
// `accept_proxy_protocol`:
//
//	deny, err := acl.Parse([]string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"})
//	if err != nil {
//		return fmt.Errorf("deny: %w", err) // names the bad entry
//	}
//	if deny.Contains(clientIP) {
//		// refuse with reason "denied"
//	}
//
// # IPv4 in IPv6
//
// An IPv4-mapped IPv6 address is its IPv4 address, on both sides: the entry
// "::ffff:10.0.0.0/104" is 10.0.0.0/8 and the entry "::ffff:192.0.2.7" is
// 192.0.2.7, and a client seen as ::ffff:10.1.2.3 (a dual-stack listener)
// is looked up as 10.1.2.3. An IPv6 prefix shorter than /96 is an IPv6 entry
// and matches IPv6 clients only, so "::/0" means "every IPv6 client", not
// every client (write "0.0.0.0/0" as well for that). This is what nginx and
// net/netip do.
//
// # Cost
//
// Parse turns the entries into sorted, merged address ranges (one list per
// family); Contains is a binary search, O(log n) in the number of ranges,
// with no allocation. Overlapping and nested entries merge into one range.
package acl
