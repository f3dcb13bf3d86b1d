package relay

import (
	"net"

	"golang.org/x/sys/unix"
)

// acked returns how many bytes the peer of c has acknowledged
// (tcpi_bytes_acked), or 0 when c is not a TCP socket or it cannot be
// read (see stillQuiet). Keepalive probes carry no data and do not move
// it.
func acked(c net.Conn) int64 {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	var n int64
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int64(info.Bytes_acked)
		}
	})
	return n
}
