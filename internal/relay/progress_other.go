//go:build !linux

package relay

import "net"

// acked is Linux's tcpi_bytes_acked; elsewhere only the copy's own counts
// show progress.
func acked(net.Conn) int64 { return 0 }
