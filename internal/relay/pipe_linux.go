package relay

import (
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeSize is the kernel buffer asked for each pipe: one splice round
// moves at most this much.
const pipeSize = 1 << 20

// pipe is a kernel pipe that spliced bytes pass through, from a pool:
// a connection holds one only while it splices.
type pipe struct{ r, w int }

var pipes sync.Pool

// getPipe returns an empty pipe, or nil when none can be made.
func getPipe() *pipe {
	if p, ok := pipes.Get().(*pipe); ok {
		return p
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil
	}
	// Best effort: a smaller pipe only means more rounds.
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	p := &pipe{r: fds[0], w: fds[1]}
	// A pipe the pool drops is closed when collected.
	runtime.SetFinalizer(p, (*pipe).close)
	return p
}

// putPipe returns an empty pipe to the pool.
func putPipe(p *pipe) { pipes.Put(p) }

func (p *pipe) close() {
	runtime.SetFinalizer(p, nil)
	_ = unix.Close(p.r)
	_ = unix.Close(p.w)
}

// fill splices up to n bytes queued on src into the pipe without waiting.
func (p *pipe) fill(src syscall.RawConn, n int) (int, error) {
	var in int
	var serr error
	err := src.Read(func(fd uintptr) bool {
		in, serr = ignoringEINTR(func() (int, error) {
			m, err := unix.Splice(int(fd), nil, p.w, nil, min(n, pipeSize), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			return int(m), err
		})
		return true
	})
	if err != nil {
		return 0, err
	}
	return in, serr
}

// drain splices the n bytes in the pipe to dst, waiting in the netpoller
// while dst's send buffer is full. It counts the bytes on m as each
// splice moves them: to a slow reader, draining a full pipe takes many
// idle timeouts, and the bytes that move meanwhile are traffic.
func (p *pipe) drain(dst syscall.RawConn, n int, m *meter) error {
	var serr error
	err := dst.Write(func(fd uintptr) bool {
		for n > 0 {
			var out int
			out, serr = ignoringEINTR(func() (int, error) {
				m, err := unix.Splice(p.r, nil, int(fd), nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
				return int(m), err
			})
			if serr == unix.EAGAIN {
				serr = nil
				return false // wait until dst is writable
			}
			if serr != nil {
				return true
			}
			if out == 0 {
				serr = unix.EIO // the pipe held fewer bytes than it said
				return true
			}
			m.add(out)
			n -= out
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}
