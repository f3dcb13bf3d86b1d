//go:build !linux

package tcpproxy

import "net"

// acceptQueueLen is unknown outside Linux, where there is no sk_lookup
// socket to drain.
func acceptQueueLen(net.Listener) (int, bool) { return 0, false }
