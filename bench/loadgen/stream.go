package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

const streamChunk = 4 << 10

// streamStats counts verified bytes and failed (cut or corrupted) streams.
type streamStats struct {
	bytes, failures atomic.Int64
}

// runStream keeps one long-lived connection to addr echoing a known byte
// pattern and verifies every byte that comes back, until ctx ends. A cut
// or corrupted stream is counted as a failure and reopened.
func runStream(ctx context.Context, addr string, id int, st *streamStats) {
	for ctx.Err() == nil {
		err := streamOnce(ctx, addr, id, st)
		if err == nil || ctx.Err() != nil {
			return
		}
		st.failures.Add(1)
		fmt.Fprintf(os.Stderr, "loadgen: stream %d: %v\n", id, err)
		time.Sleep(50 * time.Millisecond)
	}
}

// streamOnce echoes pattern chunks over one connection until ctx ends
// (nil) or the stream fails.
func streamOnce(ctx context.Context, addr string, id int, st *streamStats) error {
	c, err := net.DialTimeout("tcp", addr, connTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	out := make([]byte, streamChunk)
	in := make([]byte, streamChunk)
	var off int64
	for ctx.Err() == nil {
		for i := range out {
			out[i] = patternByte(id, off+int64(i))
		}
		if off == 0 {
			out[0] = 'E' // tells bench/backend -mode auto to echo
		}
		_ = c.SetDeadline(time.Now().Add(connTimeout))
		if _, err := c.Write(out); err != nil {
			return fmt.Errorf("write at %d: %w", off, err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		for i := range in {
			if in[i] != out[i] {
				return fmt.Errorf("corrupted at byte %d", off+int64(i))
			}
		}
		off += streamChunk
		st.bytes.Add(streamChunk)
		time.Sleep(time.Millisecond)
	}
	return nil
}

// patternByte is the byte at offset off of stream id: not constant, so a
// lost, repeated or reordered chunk is detected.
func patternByte(id int, off int64) byte {
	return byte((off*131 + off/streamChunk*7 + int64(id)*17) % 251)
}
