//go:build !linux

package relay

import (
	"io"
	"net"
	"syscall"
)

// spliceHalf copies src to dst; outside Linux there is no splice(2), and
// io.Copy uses the best copy the platform has.
func spliceHalf(dst, src *net.TCPConn, m *meter) error {
	_, err := io.Copy(dst, &countingReader{r: src, m: m})
	return err
}

// InlineOOB does nothing outside Linux.
func InlineOOB(net.Conn) {}

// SetListenerOptions does nothing outside Linux.
func SetListenerOptions(_, _ string, _ syscall.RawConn) error { return nil }

// SetKeepalive sets TCP keepalive on a connected socket; on a listening
// socket it does nothing outside Linux.
func SetKeepalive(rc syscall.RawConn, k net.KeepAliveConfig) error { return nil }
