package probe

import (
	"net"
)

// session is one probe's connection and its pooled read buffer.
type session struct {
	conn net.Conn
	buf  []byte // ReadLimit bytes
	n    int    // bytes read into buf
}

// fill reads once into the free part of buf. The caller looks at the data
// before the error: a read may return both.
func (s *session) fill() error {
	m, err := s.conn.Read(s.buf[s.n:])
	s.n += m
	return err
}

// full says the read limit is reached.
func (s *session) full() bool { return s.n == len(s.buf) }

// send writes b; its error says the probe failed while sending.
func (s *session) send(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := s.conn.Write(b); err != nil {
		return &failure{msg: "sending failed: " + err.Error(), cause: err}
	}
	return nil
}
