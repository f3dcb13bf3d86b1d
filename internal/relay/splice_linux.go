package relay

import (
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyBufSize is the size of one read through user space. Bursts that fit
// are copied with one read and one write, the cheapest for small
// request/response traffic; a burst that fills the buffer continues with
// splice(2).
const copyBufSize = 8 << 10

type copyBuf = [copyBufSize]byte

var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

// spliceHalf copies src to dst until EOF without holding anything while
// the connection is idle.
//
// A plain io.Copy between two *net.TCPConn splices, but it keeps a pipe
// (two file descriptors and up to 1 MiB of kernel buffer) per direction for
// the whole life of the connection, idle or not; a buffered copy keeps its
// buffer. Here the goroutine parks in the netpoller until src is readable,
// then reads the burst into a pooled buffer; when the burst fills it, the
// rest of what is queued is spliced, with a pipe from Go's pool that goes
// back at once. An idle connection costs its two sockets and two parked
// goroutines only.
func spliceHalf(dst, src *net.TCPConn, bytes Counter) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	for {
		buf, n, err := readWhenReady(rc)
		if err != nil || n == 0 {
			return err // n == 0: EOF
		}
		_, err = dst.Write(buf[:n])
		copyBufs.Put(buf)
		bytes.Add(float64(n))
		if err != nil {
			return err
		}
		if n == copyBufSize {
			if err := spliceQueued(dst, src, rc, bytes); err != nil {
				return err
			}
		}
	}
}

// readWhenReady parks until the socket is readable and reads what is
// queued into a pooled buffer, taken only once there is data to read.
// It returns n == 0 at EOF.
func readWhenReady(rc syscall.RawConn) (*copyBuf, int, error) {
	var (
		buf  *copyBuf
		n    int
		rerr error
	)
	err := rc.Read(func(fd uintptr) bool {
		buf = copyBufs.Get().(*copyBuf)
		for {
			n, rerr = unix.Read(int(fd), buf[:])
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			copyBufs.Put(buf)
			return false // park in the netpoller until readable
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil || n <= 0 {
		copyBufs.Put(buf)
		return nil, 0, err
	}
	return buf, n, nil
}

// spliceQueued splices exactly the bytes queued on src, so that the copy
// never waits for more while holding a pipe. splice stops short at an
// urgent mark that arrived before SO_OOBINLINE was set; the next read
// steps over it.
func spliceQueued(dst, src *net.TCPConn, rc syscall.RawConn, bytes Counter) error {
	var queued int
	var qerr error
	if err := rc.Control(func(fd uintptr) {
		queued, qerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return err
	}
	if qerr != nil || queued == 0 {
		return qerr
	}
	n, err := dst.ReadFrom(&io.LimitedReader{R: src, N: int64(queued)})
	bytes.Add(float64(n))
	Paths.SplicedBytes.Add(uint64(n))
	return err
}

// InlineOOB sets SO_OOBINLINE on a socket. Urgent (MSG_OOB) data would
// otherwise sit outside the stream, where splice never sees it: it would
// stall that direction and be lost at FIN. Inline, it is forwarded in order
// as ordinary data. A failure is harmless: the socket is closing.
func InlineOOB(c net.Conn) {
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

// SetListenerOptions sets SO_OOBINLINE on a listening socket: accepted
// sockets inherit it, so an urgent byte sent right after connecting is
// already inline (see InlineOOB).
func SetListenerOptions(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
