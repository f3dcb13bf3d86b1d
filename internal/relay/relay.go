// Package relay is the goroutine data path: it moves bytes between a
// client connection and its target connection, both directions at once,
// each passing its half-close on, with bulk data spliced in the kernel
// when both ends are plain TCP sockets. It enforces the idle, half-close
// and maximum-duration timeouts and says why each connection ended.
//
//	c := relay.New(client, target, relay.Timeouts{Idle: time.Hour}, accepted, upBytes, downBytes)
//	reason := c.Run() // blocks until both directions are done
//	up, down := c.Bytes()
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

// readError marks a copy error as the source's: reading failed. Any other
// copy error is the destination's.
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

func readFailed(err error) bool {
	var re readError
	return errors.As(err, &re)
}

// copyHalf copies src to dst until EOF, counting the bytes, then shuts
// down dst's write side so that the peer sees the half-close.
func copyHalf(dst, src net.Conn, m *meter) error {
	var err error
	d, dOK := dst.(*net.TCPConn)
	s, sOK := src.(*net.TCPConn)
	if dOK && sOK {
		err = spliceHalf(d, s, m)
	} else {
		_, err = io.Copy(dst, &countingReader{r: src, m: m})
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

// countingReader counts what it reads and marks its errors as the
// source's. It hides src's WriterTo, so io.Copy reads through it.
type countingReader struct {
	r io.Reader
	m *meter
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.m.add(n)
	}
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
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
