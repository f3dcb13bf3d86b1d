package relay

import (
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
// the connection is idle. A read error is returned as a readError.
//
// A plain io.Copy between two *net.TCPConn splices, but it keeps a pipe
// (two file descriptors and up to 1 MiB of kernel buffer) per direction for
// the whole life of the connection, idle or not; a buffered copy keeps its
// buffer. Here the goroutine parks in the netpoller until src is readable,
// then reads the burst into a pooled buffer; when the burst fills it, the
// rest of what is queued is spliced through a pooled pipe that goes back
// at once. An idle connection costs its two sockets and two parked
// goroutines only.
func spliceHalf(dst, src *net.TCPConn, m *meter) error {
	rc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	for {
		buf, n, err := readWhenReady(rc)
		if err != nil {
			return readError{err}
		}
		if n == 0 {
			return nil // EOF
		}
		_, err = dst.Write(buf[:n])
		copyBufs.Put(buf)
		m.add(n)
		if err != nil {
			return err
		}
		if n == copyBufSize {
			if err := spliceQueued(wc, rc, m); err != nil {
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
		n, rerr = ignoringEINTR(func() (int, error) { return unix.Read(int(fd), buf[:]) })
		if rerr == unix.EAGAIN {
			copyBufs.Put(buf)
			buf = nil    // not ours any more, whatever rc.Read returns
			return false // park in the netpoller until readable
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil || n <= 0 {
		if buf != nil { // nil when rc.Read failed while parked
			copyBufs.Put(buf)
		}
		return nil, 0, err
	}
	return buf, n, nil
}

// spliceQueued splices exactly the bytes queued on src to dst, so that
// the copy never waits for more while holding a pipe. splice stops short
// at an urgent mark that arrived before SO_OOBINLINE was set, and returns
// EAGAIN if the bytes went meanwhile; the caller's next read handles both.
// Errors reading src are returned as readErrors.
func spliceQueued(dst, src syscall.RawConn, m *meter) error {
	var queued int
	var qerr error
	if err := src.Control(func(fd uintptr) {
		queued, qerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return readError{err}
	}
	if qerr != nil || queued == 0 {
		return readErrorOrNil(qerr)
	}
	p := getPipe()
	if p == nil {
		return nil // no pipe to be had (out of descriptors): read instead
	}
	for queued > 0 {
		in, err := p.fill(src, queued)
		if err != nil || in == 0 {
			putPipe(p)
			if err == unix.EAGAIN {
				err = nil
			}
			return readErrorOrNil(err)
		}
		if err := p.drain(dst, in, m); err != nil {
			p.close() // bytes may be stuck in it
			return err
		}
		Paths.SplicedBytes.Add(uint64(in))
		queued -= in
	}
	putPipe(p)
	return nil
}

func readErrorOrNil(err error) error {
	if err == nil {
		return nil
	}
	return readError{err}
}

// ignoringEINTR retries a system call interrupted by a signal.
func ignoringEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != unix.EINTR {
			return n, err
		}
	}
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
