package probe

import (
	"errors"
	"syscall"
)

// localErrnos are the dial errors that come from this machine, not from
// the target: out of file descriptors (per process or system-wide), out of
// socket buffers or memory, and out of ephemeral ports (connect(2) says
// EADDRNOTAVAIL when no local port is free).
var localErrnos = [...]syscall.Errno{
	syscall.EMFILE,
	syscall.ENFILE,
	syscall.ENOBUFS,
	syscall.ENOMEM,
	syscall.EADDRNOTAVAIL,
}

// IsLocal reports whether err (typically a dial error, a *net.OpError
// wrapping an *os.SyscallError) failed for a reason local to this machine.
// Such a failure says nothing about the target: it must not mark the
// target down.
func IsLocal(err error) bool {
	if err == nil {
		return false
	}
	for _, errno := range localErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
