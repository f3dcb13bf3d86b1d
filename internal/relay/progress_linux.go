package relay

import (
	"net"

	"golang.org/x/sys/unix"
)

// progress returns how many bytes the peer of c has acknowledged
// (tcpi_bytes_acked), and whether c holds bytes of ours the peer has not
// acknowledged yet (unsent or unacknowledged); 0 and false when c is not
// a TCP socket or its TCP_INFO cannot be read (see stillQuiet).
// Keepalive probes carry no data and move neither.
func progress(c net.Conn) (acked int64, pending bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			acked, pending = int64(info.Bytes_acked), info.Notsent_bytes != 0 || info.Unacked != 0
		}
	})
	return acked, pending
}
