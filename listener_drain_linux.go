package tcpproxy

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// acceptQueueLen returns the number of connections waiting in a listening
// socket's accept queue: for a socket in LISTEN state the kernel reports
// it as tcpi_unacked.
func acceptQueueLen(ln net.Listener) (int, bool) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
		return 0, false
	}
	return int(info.Unacked), true
}
