package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"time"
)

// connTimeout bounds every dial and every exchange.
const connTimeout = 2 * time.Second

// echoMsg returns a message of size bytes for the echo backend: its first
// byte is 'E', so bench/backend -mode auto echoes it.
func echoMsg(size int) []byte {
	m := make([]byte, size)
	for i := range m {
		m[i] = 'a' + byte(i%26)
	}
	m[0] = 'E'
	return m
}

// dial opens a TCP connection with the standard timeout.
func dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, connTimeout)
}

// exchange writes msg to c and reads the echo into buf (len(msg) bytes),
// failing if it differs.
func exchange(c net.Conn, msg, buf []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf = buf[:len(msg)]
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, msg) {
		return fmt.Errorf("echo mismatch")
	}
	return nil
}

// dialExchange dials addr, does one exchange under a deadline and returns
// the open connection.
func dialExchange(addr string, msg, buf []byte) (net.Conn, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(connTimeout))
	if err := exchange(c, msg, buf); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
