package tcpproxy

import (
	"testing"
	"unsafe"
)

// An idle connection on a loop costs its evloop.Conn (512 bytes) and its
// loopConn: 144 bytes is a malloc size class, one byte more costs 16.
func TestLoopConnFitsInASizeClassOf144Bytes(t *testing.T) {
	if n := unsafe.Sizeof(loopConn{}); n > 144 {
		t.Fatalf("a loopConn takes %d bytes, want at most 144", n)
	}
	if n := unsafe.Sizeof(loopConnPP{}); n > 256 {
		t.Fatalf("a loopConnPP takes %d bytes, want at most 256", n)
	}
}
