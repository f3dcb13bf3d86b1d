//go:build linux

package evloop

import (
	"crypto/sha256"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// countingWriter counts what passed through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (cw *countingWriter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.n.Add(int64(n))
	return n, err
}

func TestSlowReaderStopsTheSourceAndHoldsOneBuffer(t *testing.T) {
	ls := testLoops(t, 1)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	c, s := f.dial()
	tc := ts.accept(t)

	const size = 64 << 20
	cw := &countingWriter{w: tc}
	sent := make(chan [32]byte, 1)
	go func() {
		sum, _ := stream(cw, size, 7)
		tc.CloseWrite()
		sent <- sum
	}()

	// The client reads nothing: the target must be stopped by TCP's flow
	// control, not absorbed by the proxy.
	last, still := int64(-1), 0
	waitFor(t, 10*time.Second, "the target's writes to stall", func() bool {
		n := cw.n.Load()
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 40 // 200 ms without progress
	})
	if last >= size {
		t.Fatalf("the target wrote all %d MiB into a client that reads nothing", size>>20)
	}
	// What stopped it is the proxy not reading: the bytes wait in the
	// kernel, in the proxy's socket to the target, not in the proxy.
	fd := socketWithLocalPort(t, tc.RemoteAddr().(*net.TCPAddr).Port)
	if queued, err := unix.IoctlGetInt(fd, unix.SIOCINQ); err != nil || queued == 0 {
		t.Fatalf("%d bytes queued on the proxy's socket to the target (%v): the proxy kept reading", queued, err)
	}
	if n := parked.Load(); n > 1 {
		t.Fatalf("%d buffers parked, want at most one (one direction is blocked)", n)
	}

	// A slow reader: 16 KiB at a time, for a while, then all of it.
	h := sha256.New()
	buf := make([]byte, 16<<10)
	got := int64(0)
	for range 200 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
		got += int64(n)
		if p := parked.Load(); p > 1 {
			t.Fatalf("%d buffers parked while the client reads slowly, want at most one", p)
		}
		time.Sleep(time.Millisecond)
	}
	n, err := io.Copy(h, c)
	if err != nil || got+n != size {
		t.Fatalf("client read %d bytes (%v), want %d", got+n, err, size)
	}
	if [32]byte(h.Sum(nil)) != <-sent {
		t.Fatal("the bytes the client read differ from those the target sent")
	}
	c.Close()
	if r := s.wait(t, 5*time.Second); r.r != Normal || r.down != size {
		t.Fatalf("Done(%v, down %d), want normal, %d", r.r, r.down, size)
	}
	if n := parked.Load(); n != 0 {
		t.Fatalf("%d buffers still parked after the end", n)
	}
}
