//go:build !linux

package tcpproxy

import (
	"io"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// spliceHalf copies src to dst; outside Linux there is no splice(2), and
// io.Copy uses the best copy the platform has.
func spliceHalf(dst, src *net.TCPConn, bytes prometheus.Counter) error {
	n, err := io.Copy(dst, src)
	bytes.Add(float64(n))
	return err
}

// inlineOOB does nothing outside Linux.
func inlineOOB(net.Conn) {}

// setListenerOptions does nothing outside Linux.
func setListenerOptions(_, _ string, _ syscall.RawConn) error { return nil }
