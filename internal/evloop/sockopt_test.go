//go:build linux

package evloop

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The listening sockets and the dialled ones share one keepalive setter:
// a duration that is not whole seconds is rounded up on both (as Go's own
// dialer does), and Enable false turns keepalive off again.
func TestSetKeepAliveRoundsUpAndTurnsOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	get := func(level, opt int) int {
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	ka := net.KeepAliveConfig{Enable: true, Idle: 1500 * time.Millisecond, Interval: 100 * time.Millisecond, Count: 3}
	if err := SetKeepAlive(rc, ka); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		name             string
		level, opt, want int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 2},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 1},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
	} {
		if v := get(o.level, o.opt); v != o.want {
			t.Errorf("%s = %d, want %d", o.name, v, o.want)
		}
	}
	if err := SetKeepAlive(rc, net.KeepAliveConfig{Enable: false, Idle: -1, Interval: -1, Count: -1}); err != nil {
		t.Fatal(err)
	}
	if v := get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 0 {
		t.Errorf("disabled: SO_KEEPALIVE = %d, want 0", v)
	}
}
