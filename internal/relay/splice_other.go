//go:build !linux

package relay

import (
	"io"
	"net"
	"syscall"
)

// spliceHalf copies src to dst; outside Linux there is no splice(2), and
// io.Copy uses the best copy the platform has.
func spliceHalf(dst, src *net.TCPConn, bytes Counter) error {
	n, err := io.Copy(dst, src)
	bytes.Add(float64(n))
	return err
}

// InlineOOB does nothing outside Linux.
func InlineOOB(net.Conn) {}

// SetListenerOptions does nothing outside Linux.
func SetListenerOptions(_, _ string, _ syscall.RawConn) error { return nil }
