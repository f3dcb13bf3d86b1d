package probe

import (
	"bytes"
)

// sendExpect writes the prepared bytes and reads until the expected bytes
// appear, the read limit is reached, the target stops sending or the
// deadline passes.
func (p *Prober) sendExpect(s *session) error {
	if err := s.send(p.out); err != nil {
		return err
	}
	from := 0 // where the expected bytes may start that was not searched yet
	var rerr error
	for {
		if bytes.Contains(s.buf[from:s.n], p.expect) {
			return nil
		}
		from = max(0, s.n-len(p.expect)+1)
		if s.full() {
			return &failure{msg: "expected " + p.expectQ + ", got " + quote(s.buf[:s.n])}
		}
		if rerr != nil {
			return p.readFailed(rerr, p.expectQ, p.expectQ, s.buf[:s.n])
		}
		rerr = s.fill()
	}
}
