//go:build linux

package sklookup

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// AttachedPrograms counts the sk_lookup programs attached to this
// process's network namespace, whoever attached them: 1 while this
// process's engine is in use and no other program is there, 0 after its
// last Release. A count above 1 means another program runs too, and the
// first attached one that assigns a socket wins.
func AttachedPrograms() (int, error) {
	ns, err := os.Open("/proc/self/ns/net")
	if err != nil {
		return 0, fmt.Errorf("sk_lookup: opening this process's network namespace: %w", err)
	}
	defer ns.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(ns.Fd()), Attach: ebpf.AttachSkLookup})
	if err != nil {
		return 0, fmt.Errorf("sk_lookup: querying the namespace's sk_lookup programs: %w", err)
	}
	return len(res.Programs), nil
}
