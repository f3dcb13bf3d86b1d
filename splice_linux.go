package tcpproxy

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// spliceHalf copies src to dst with splice(2) until EOF, without holding
// anything while the connection is idle.
//
// A plain io.Copy between two *net.TCPConn splices too, but it keeps a
// pipe (two file descriptors and up to 1 MiB of kernel buffer) per
// direction for the whole life of the connection, idle or not. Here the
// goroutine first parks in the netpoller until src is readable, asks the
// kernel how many bytes are queued, and splices exactly those: the pipe
// comes from Go's pool and goes back at once, so an idle connection costs
// its two sockets and two parked goroutines only.
func spliceHalf(dst, src *net.TCPConn, bytes prometheus.Counter) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	for {
		queued, err := waitReadable(rc)
		if err != nil {
			return err
		}
		if queued == 0 {
			return nil // EOF
		}
		n, err := dst.ReadFrom(&io.LimitedReader{R: src, N: int64(queued)})
		if n == 0 && err == nil {
			// splice stops short at an urgent mark (SO_OOBINLINE was set
			// after the byte arrived); a read steps over it. It also
			// returns 0 at EOF, which the read reports.
			n, err = copyOnce(dst, src)
		}
		bytes.Add(float64(n))
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyOnce moves one read's worth of bytes through user space.
func copyOnce(dst, src *net.TCPConn) (int64, error) {
	buf := make([]byte, 4096)
	n, err := src.Read(buf)
	if n > 0 {
		if _, werr := dst.Write(buf[:n]); werr != nil {
			return int64(n), werr
		}
	}
	return int64(n), err
}

// waitReadable parks until the socket has data or has reached EOF, and
// returns the number of bytes queued (0 at EOF).
func waitReadable(rc syscall.RawConn) (int, error) {
	var queued int
	var opErr error
	err := rc.Read(func(fd uintptr) bool {
		n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err != nil {
			opErr = err
			return true
		}
		if n > 0 {
			queued = n
			return true
		}
		// Nothing queued: either nothing arrived yet, or EOF or an error.
		var b [1]byte
		m, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return false // park in the netpoller until readable
		case errors.Is(err, unix.EINTR):
			return false
		case err != nil:
			opErr = err
		default:
			queued = m
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	return queued, opErr
}

// inlineOOB sets SO_OOBINLINE on a socket. Urgent (MSG_OOB) data would
// otherwise sit outside the stream, where splice never sees it: it would
// stall that direction and be lost at FIN. Inline, it is forwarded in order
// as ordinary data. A failure is harmless: the socket is closing.
func inlineOOB(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if rc, err := tc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
		})
	}
}

// setListenerOptions sets SO_OOBINLINE on a listening socket: accepted
// sockets inherit it, so an urgent byte sent right after connecting is
// already inline (see inlineOOB).
func setListenerOptions(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
