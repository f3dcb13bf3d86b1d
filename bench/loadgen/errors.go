package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
)

// errClass names the kinds of connection failure the scenarios count.
var errClass = []string{"refused", "reset", "eof", "timeout", "other"}

// classify sorts a connection error into one of errClass.
func classify(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	default:
		return "other"
	}
}

// errCounts counts errors per class; safe for concurrent use.
type errCounts struct {
	n      [5]atomic.Int64
	logged atomic.Int64
}

// add counts err and prints the first few "other" errors to stderr, so an
// unexpected failure mode is visible.
func (e *errCounts) add(err error) {
	c := classify(err)
	for i, name := range errClass {
		if name == c {
			e.n[i].Add(1)
		}
	}
	if c == "other" && e.logged.Add(1) <= 5 {
		fmt.Fprintln(os.Stderr, "loadgen: error:", err)
	}
}

// total is the number of errors counted.
func (e *errCounts) total() int64 {
	var t int64
	for i := range e.n {
		t += e.n[i].Load()
	}
	return t
}

// String formats the counts as key=value pairs.
func (e *errCounts) String() string {
	s := fmt.Sprintf("errors=%d", e.total())
	for i, name := range errClass {
		s += fmt.Sprintf(" %s=%d", name, e.n[i].Load())
	}
	return s
}
