package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

const bulkBuf = 256 << 10

// runBulk pushes (-dir up, to the sink) or pulls (-dir down, from the
// source) -bytes bytes through one connection, verifies the count and
// reports MiB/s.
func runBulk(fs *flag.FlagSet, args []string) error {
	addrs := addrFlag(fs)
	dir := fs.String("dir", "up", "up (client to sink) or down (source to client)")
	size := fs.String("bytes", "1G", "bytes to move; suffixes K, M, G (powers of 2)")
	timeout := fs.Duration("timeout", 120*time.Second, "bound on the whole transfer")
	if err := parse(fs, args, addrs); err != nil {
		return err
	}
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", (*addrs)[0], connTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(*timeout))
	start := time.Now()
	var got int64
	switch *dir {
	case "up":
		got, err = push(c.(*net.TCPConn), n)
	case "down":
		got, err = pull(c, n)
	default:
		return fmt.Errorf("-dir must be up or down")
	}
	secs := time.Since(start).Seconds()
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("byte count mismatch: sent %d, counted %d", n, got)
	}
	fmt.Printf("dir=%s bytes=%d secs=%.3f mibps=%.1f\n", *dir, n, secs, float64(n)/secs/(1<<20))
	return nil
}

// push sends 'S' and n bytes, half-closes and returns the count the sink
// reports.
func push(c *net.TCPConn, n int64) (int64, error) {
	buf := make([]byte, bulkBuf)
	buf[0] = 'S'
	if _, err := c.Write(buf[:1]); err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		chunk := buf
		if left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		w, err := c.Write(chunk)
		left -= int64(w)
		if err != nil {
			return 0, err
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, err
	}
	var reply [8]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return 0, fmt.Errorf("reading the sink's count: %w", err)
	}
	return int64(binary.BigEndian.Uint64(reply[:])), nil
}

// pull asks the source for n bytes and counts what arrives until EOF.
func pull(c net.Conn, n int64) (int64, error) {
	var req [9]byte
	req[0] = 'R'
	binary.BigEndian.PutUint64(req[1:], uint64(n))
	if _, err := c.Write(req[:]); err != nil {
		return 0, err
	}
	buf := make([]byte, bulkBuf)
	var got int64
	for {
		r, err := c.Read(buf)
		got += int64(r)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// parseSize reads a byte count with an optional K, M or G suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	v, err := strconv.ParseInt(strings.TrimRight(s, "KMG"), 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}
