package probe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// quoteLimit is how much of an expected or received value an error shows.
const quoteLimit = 64

// failure is a probe that connected but did not pass. Its message is the
// target's last_error; cause is the read or write error behind it, if any,
// so that errors.Is(err, os.ErrDeadlineExceeded) tells a timeout.
type failure struct {
	msg   string
	cause error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.cause }

// quote quotes b as Go would, cut to quoteLimit bytes; a "…" after the
// closing quote says it was cut.
func quote(b []byte) string {
	if len(b) <= quoteLimit {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:quoteLimit])) + "…"
}

// readFailed explains a read that ended before the probe could pass: what
// did not come, as in "no <what> within 2s" and, after an article when
// one is needed, "before <the what> arrived"; got is what came instead.
func (p *Prober) readFailed(err error, what, theWhat string, got []byte) error {
	var msg string
	switch {
	case errors.Is(err, io.EOF):
		msg = fmt.Sprintf("connection closed before %s arrived, got %s", theWhat, quote(got))
	case errors.Is(err, os.ErrDeadlineExceeded):
		msg = fmt.Sprintf("no %s within %s, got %s", what, p.timeoutS, quote(got))
	case errors.Is(err, syscall.ECONNRESET):
		msg = fmt.Sprintf("connection reset before %s arrived, got %s", theWhat, quote(got))
	default:
		msg = fmt.Sprintf("reading failed before %s arrived (%v), got %s", theWhat, err, quote(got))
	}
	return &failure{msg: msg, cause: err}
}

// ConfigError is an error of New: the Check cannot work. Field names the
// setting at fault as the health_checks config spells it ("timeout",
// "port", "expect", "uri", "method", "headers", "expect_status", or
// "proxy_protocol" for the header version), so that a config error can
// point at it; the message quotes the offending value.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func fieldErrorf(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}
