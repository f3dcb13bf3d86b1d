package main

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
)

// handlers maps a -mode value to the function serving one connection.
var handlers = map[string]func(*net.TCPConn){
	"echo":   func(c *net.TCPConn) { echo(c, nil) },
	"sink":   func(c *net.TCPConn) { sink(c, 0) },
	"source": func(c *net.TCPConn) { source(c, nil) },
	"auto":   auto,
}

const (
	echoBufSize = 16 << 10
	bulkBufSize = 256 << 10
)

// echoBufs recycles echo buffers: the connection-rate scenario opens tens
// of thousands of short connections and should not be paced by the GC.
var echoBufs = sync.Pool{New: func() any { b := make([]byte, echoBufSize); return &b }}

// zeros is what source connections send.
var zeros = make([]byte, bulkBufSize)

// auto reads the first bytes and lets the first one choose the mode.
func auto(c *net.TCPConn) {
	bp := echoBufs.Get().(*[]byte)
	defer echoBufs.Put(bp)
	buf := *bp
	n, _ := c.Read(buf)
	if n == 0 {
		return
	}
	switch buf[0] {
	case 'S':
		sink(c, int64(n-1))
	case 'R':
		source(c, buf[1:n])
	default:
		echo(c, buf[:n])
	}
}

// echo writes back first (bytes already read) and then everything it reads,
// and passes EOF on as a half-close.
func echo(c *net.TCPConn, first []byte) {
	if len(first) > 0 {
		if _, err := c.Write(first); err != nil {
			return
		}
	}
	bp := echoBufs.Get().(*[]byte)
	defer echoBufs.Put(bp)
	buf := *bp
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				_ = c.CloseWrite()
			}
			return
		}
	}
}

// sink reads until EOF, then replies with the number of bytes read
// (already of them were read before sink was called) as 8 bytes, big
// endian.
func sink(c *net.TCPConn, already int64) {
	buf := make([]byte, bulkBufSize)
	total := already
	for {
		n, err := c.Read(buf)
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	var reply [8]byte
	binary.BigEndian.PutUint64(reply[:], uint64(total))
	_, _ = c.Write(reply[:])
	_ = c.CloseWrite()
}

// source reads an 8-byte big-endian count (the part of it already read is
// in head), writes that many bytes and half-closes.
func source(c *net.TCPConn, head []byte) {
	var hdr [8]byte
	got := copy(hdr[:], head)
	if got < len(hdr) {
		if _, err := io.ReadFull(c, hdr[got:]); err != nil {
			return
		}
	}
	left := int64(binary.BigEndian.Uint64(hdr[:]))
	for left > 0 {
		chunk := zeros
		if left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		n, err := c.Write(chunk)
		left -= int64(n)
		if err != nil {
			return
		}
	}
	_ = c.CloseWrite()
	// Wait for the client's close so that ours does not race its last
	// reads (and no RST is sent while it still reads).
	var one [1]byte
	_, _ = c.Read(one[:])
}
