//go:build linux

package evloop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// A slow reader is not idle. The loop stamps a direction when it writes
// to the destination socket; a destination that filled up is written
// again only once the kernel says it is writable, which for a socket
// whose send buffer grew to megabytes comes after a third of it has
// drained: minutes, for a reader of a few KiB/s, during which the bytes
// leaving the socket buffer are traffic the stamps do not see. So when
// the stamps say a connection has been quiet for its idle or half-close
// timeout, the loop asks the kernel before ending it (progressLook):
//
//   - a destination socket that holds no byte of ours that is unsent or
//     unacknowledged has nothing in flight: that direction is quiet;
//   - otherwise the peer's acknowledged byte count (tcpi_bytes_acked) is
//     compared with the previous look's: if it moved, bytes moved, and
//     the direction is stamped now.
//
// The first look at a stalled direction has nothing to compare with, so
// it samples, and looks again checksPerTimeout times sooner than the
// timeout. A sample older than the last stamp says nothing of the time
// since, so it is taken again. None of this runs per byte: only when a
// timeout comes due, with one getsockopt per socket.
const checksPerTimeout = 8

// progressLook decides whether c, whose idle or half-close timeout r
// came due, is really quiet. It returns false when c must stay: it is
// then filed in the wheel again.
func (l *loop) progressLook(c *Conn, r Reason) (quiet bool) {
	p := &c.p
	timeout := p.to.Idle
	dirs := [2]bool{true, true} // the directions whose progress counts
	if r == HalfCloseTimeout {
		timeout = p.to.HalfClose
		dirs = [2]bool{!p.dir[up].eof, !p.dir[down].eof}
	}
	// Ticks as uint32, compared by wrapping differences.
	nowTick := uint32(l.now / tick)
	lastMove := max(p.dir[up].last, p.dir[down].last, p.halfAt)
	sampleTick := p.sampled - 1
	fresh := p.sampled != 0 && int32(sampleTick-uint32(lastMove/tick)) >= 0
	minAge := max(int64(timeout)/checksPerTimeout, tick)
	if age := int64(nowTick-sampleTick) * tick; fresh && age < minAge {
		// Looked too recently (a phase change filed c early): wait.
		l.wheel.add(c, l.now-age+minAge)
		return false
	}
	pending := false
	for d, counts := range dirs {
		if !counts {
			continue
		}
		info, ok := tcpInfo(c.sock(1 - d))
		if !ok || info.Notsent_bytes == 0 && info.Unacked == 0 {
			continue // nothing of ours in flight to that peer
		}
		pending = true
		h := &p.dir[d]
		acked := uint32(info.Bytes_acked)
		if fresh && acked != h.acked {
			h.last = l.now
		}
		h.acked = acked
	}
	if !pending {
		p.sampled = 0
		return true
	}
	p.sampled = nowTick + 1
	if !fresh {
		l.wheel.add(c, l.now+minAge)
		return false
	}
	if due, _ := c.deadline(); due > l.now {
		l.wheel.add(c, due)
		return false
	}
	return true
}

// tcpInfo reads a socket's TCP_INFO (raw: see sys.go).
func tcpInfo(fd int) (unix.TCPInfo, bool) {
	var info unix.TCPInfo
	size := uint32(unsafe.Sizeof(info))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	return info, e == 0
}
