// Package relay moves bytes between a client connection and its target
// connection: both directions at once, each passing its half-close on, with
// bulk data spliced in the kernel when both ends are plain TCP sockets.
//
//	err := relay.CopyHalf(target, client, bytesUp) // client → target until EOF
//
// A direction parks in the netpoller until its socket is readable and holds
// no buffer and no pipe while the connection is idle.
package relay

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
)

// Counter counts bytes as they move (a Prometheus counter satisfies it).
type Counter interface{ Add(float64) }

// CopyHalf copies src to dst until EOF, counting the bytes, then shuts
// down dst's write side so that the peer sees the half-close.
func CopyHalf(dst, src net.Conn, bytes Counter) error {
	var err error
	d, dOK := dst.(*net.TCPConn)
	s, sOK := src.(*net.TCPConn)
	if dOK && sOK {
		err = spliceHalf(d, s, bytes)
	} else {
		var n int64
		n, err = io.Copy(dst, src)
		bytes.Add(float64(n))
	}
	if err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}

// Paths counts the connections that took each copy path and the bytes
// spliced, so that tests (and a debugger) can tell whether splice is used.
var Paths struct{ Splice, Generic, SplicedBytes atomic.Uint64 }

// CountPath records which path a connection between client and up takes.
func CountPath(client, up net.Conn) {
	_, c := client.(*net.TCPConn)
	_, u := up.(*net.TCPConn)
	if c && u {
		Paths.Splice.Add(1)
	} else {
		Paths.Generic.Add(1)
	}
}
