package probe

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/pires/go-proxyproto"
)

// Check is the configuration of a probe, as the health_checks config gives
// it. New validates it and prepares what every probe writes.
type Check struct {
	// Timeout bounds the whole probe: connect, write and read.
	Timeout time.Duration
	// Port, when not 0, is probed on the target's host instead of the
	// target's own port.
	Port int
	// Send is written once connected.
	Send []byte
	// Expect, when not empty, must appear in what the target sends within
	// Timeout (at most ReadLimit bytes are read). Empty: connecting (and
	// sending) is enough.
	Expect []byte
	// HTTP, when set, makes the probe an HTTP/1.1 request; Send and Expect
	// must then be empty.
	HTTP *HTTP
	// ProxyHeaderVersion is the PROXY protocol version the app speaks to its
	// targets: 0 none, 1 or 2. Such a target expects a header on every
	// connection, so a probe of the target's own port writes a LOCAL header
	// first. A probe of another port (Port set) writes none: that port is
	// not the one the app proxies to.
	ProxyHeaderVersion byte
}

// HTTP is an HTTP/1.1 probe over plain TCP.
type HTTP struct {
	// URI is the request target, starting with "/".
	URI string
	// Method defaults to GET.
	Method string
	// Header holds request headers in Caddy's shape. Without a Host
	// header the probe sends the target's host.
	Header http.Header
	// Status, when not 0, is the one status code that passes.
	Status int
	// StatusClass, when not 0, is the hundreds digit of the statuses that
	// pass (2 for "2xx"). With neither Status nor StatusClass any 2xx
	// passes.
	StatusClass int
	// Body, when set, must match the response body (at most what fits in
	// ReadLimit with the response head).
	Body *regexp.Regexp
}

// ReadLimit is the most a probe reads from a target.
const ReadLimit = 16 << 10

// Prober runs the probes of one Check. It is read-only after New: one
// Prober serves all targets of an app concurrently.
type Prober struct {
	timeout   time.Duration
	timeoutS  string // Timeout as error messages show it
	port      string // "" or the override port
	expect    []byte
	expectQ   string // Expect quoted for error messages
	proxyHead bool   // the PROXY header is part of out
	// out is written once connected: the PROXY header, then Send or the
	// HTTP request up to where the per-target Host line goes.
	out  []byte
	http *httpProbe // nil unless an HTTP probe
	dial net.Dialer
}

// New validates c and prepares its probes. Its errors name the field and
// quote the value.
func New(c Check) (*Prober, error) {
	if c.Timeout <= 0 {
		return nil, fieldErrorf("timeout", "timeout must be positive, got %s", c.Timeout)
	}
	if c.Port < 0 || c.Port > 65535 {
		return nil, fieldErrorf("port", "port must be 1..65535 (or 0 for the target's port), got %d", c.Port)
	}
	if c.ProxyHeaderVersion > 2 {
		return nil, fieldErrorf("proxy_protocol", "proxy header version must be 0, 1 or 2, got %d", c.ProxyHeaderVersion)
	}
	if c.HTTP != nil && (len(c.Send) > 0 || len(c.Expect) > 0) {
		return nil, fieldErrorf("uri", "an HTTP probe (uri) cannot also have send or expect bytes")
	}
	if len(c.Expect) > ReadLimit {
		return nil, fieldErrorf("expect", "expect is %d bytes, more than the %d a probe reads", len(c.Expect), ReadLimit)
	}
	p := &Prober{
		timeout:  c.Timeout,
		timeoutS: c.Timeout.String(),
		expect:   c.Expect,
		expectQ:  quote(c.Expect),
		// Probes are short-lived: TCP keepalive would only cost syscalls.
		dial: net.Dialer{Timeout: c.Timeout, KeepAlive: -1},
	}
	if c.Port != 0 {
		p.port = strconv.Itoa(c.Port)
	}
	if c.ProxyHeaderVersion != 0 && c.Port == 0 {
		h := proxyproto.Header{Version: c.ProxyHeaderVersion, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
		head, err := h.Format()
		if err != nil {
			return nil, fmt.Errorf("formatting the PROXY v%d LOCAL header: %w", c.ProxyHeaderVersion, err)
		}
		p.out = head
		p.proxyHead = true
	}
	if c.HTTP != nil {
		hp, err := newHTTPProbe(c.HTTP, p.out)
		if err != nil {
			return nil, err
		}
		p.http = hp
		p.out = hp.pre
		return p, nil
	}
	p.out = append(p.out, c.Send...)
	return p, nil
}
