//go:build linux

package evloop

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipe is a kernel pipe for splice: bytes move from a socket into it and
// out to another socket as page references, never copied.
type pipe struct {
	r, w int32
	size int32 // capacity, the most a splice into it moves
}

// pipeSize is the size asked for, as Go's splice does. Beyond the user's
// pipe quota (fs.pipe-user-pages-soft, unless privileged) the kernel
// refuses and the pipe keeps its size (64 KiB, 8 KiB once over the quota):
// splices are then that small.
const pipeSize = 1 << 20

func newPipe() (pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pipe{r: -1, w: -1}, os.NewSyscallError("pipe2", err)
	}
	p := pipe{r: int32(fds[0]), w: int32(fds[1])}
	size, err := unix.FcntlInt(uintptr(p.r), unix.F_SETPIPE_SZ, pipeSize)
	if err != nil {
		if size, err = unix.FcntlInt(uintptr(p.r), unix.F_GETPIPE_SZ, 0); err != nil {
			p.close()
			return pipe{r: -1, w: -1}, os.NewSyscallError("fcntl", err)
		}
	}
	p.size = int32(size)
	return p, nil
}

func (p pipe) close() {
	if p.r >= 0 {
		unix.Close(int(p.r))
		unix.Close(int(p.w))
	}
}

// maxSparePipes bounds the empty pipes a loop keeps for its next stalls.
const maxSparePipes = 4

// swapPipe hands the loop's pipe, with the bytes a destination did not
// take, to a connection, and puts an empty one in its place: a spare, or
// a new one. It returns false when no pipe can be made (out of
// descriptors): the pipe stays, the caller must empty it.
func (l *loop) swapPipe() (pipe, bool) {
	full := l.pipe
	if n := len(l.spares); n > 0 {
		l.pipe, l.spares = l.spares[n-1], l.spares[:n-1]
		return full, true
	}
	p, err := newPipe()
	if err != nil {
		return pipe{}, false
	}
	l.pipe = p
	return full, true
}

// putPipe takes back a connection's pipe once empty.
func (l *loop) putPipe(p pipe) {
	if len(l.spares) < maxSparePipes {
		l.spares = append(l.spares, p)
		return
	}
	p.close()
}
