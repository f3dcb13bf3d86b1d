//go:build linux

package evloop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loops' system calls are raw: made without telling Go's scheduler.
// Every descriptor a loop uses is nonblocking, so no call sleeps; but some
// take longer than sysmon's 20 µs tick (connect and close run TCP's
// loopback work inline), and a call the scheduler knows about would then
// lose its P to another thread (a handoff, a futex wake-up, context
// switches), while keeping sysmon polling every 20 µs. Measured on short
// connections: a tenth of the proxy's CPU time went to nanosleep and
// futex before.

func rawRead(fd int, b []byte) (int, error) {
	return rawIO(unix.SYS_READ, fd, b)
}

func rawWrite(fd int, b []byte) (int, error) {
	return rawIO(unix.SYS_WRITE, fd, b)
}

func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(len(b)))
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

// rawSplice moves up to n bytes between a socket and a pipe, without
// waiting on either.
func rawSplice(from, to, n int) (int, error) {
	for {
		m, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n),
			unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		switch e {
		case 0:
			return int(m), nil
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

// rawClose closes fd; its errors are of no use (the descriptor is gone).
func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func rawShutdownWrite(fd int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0); e != 0 {
		return e
	}
	return nil
}

func rawSetsockopt(fd, level, opt, value int) error {
	v := int32(value)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), unsafe.Sizeof(v), 0)
	if e != 0 {
		return e
	}
	return nil
}

// rawConnect starts connecting fd to the socket address at sa.
func rawConnect(fd int, sa unsafe.Pointer, size uintptr) error {
	if _, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), size); e != 0 {
		return e
	}
	return nil
}

// rawEpollPoll returns the ready events without waiting.
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
