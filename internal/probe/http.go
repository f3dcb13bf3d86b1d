package probe

import (
	"fmt"
	"maps"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
)

// userAgent names the prober in the targets' access logs.
const userAgent = "caddy-tcpproxy-health-check"

// httpProbe is an HTTP check prepared once: the request bytes around the
// per-target Host line and what a response must have to pass.
type httpProbe struct {
	pre      []byte // PROXY header, request line and, with a configured Host, every header
	hostLine bool   // the target's host goes between pre and post
	post     []byte // the headers after Host and the blank line

	status int    // exact code, or 0
	class  int    // hundreds digit when status is 0
	want   string // "status 2xx" for errors
	noBody bool   // a HEAD request: responses have no body
	body   *regexp.Regexp
	bodyQ  string // the body regexp quoted for errors
}

// newHTTPProbe validates h and prepares its request after prefix (the
// PROXY header, if any).
func newHTTPProbe(h *HTTP, prefix []byte) (*httpProbe, error) {
	method := h.Method
	if method == "" {
		method = "GET"
	}
	if !isToken(method) {
		return nil, fieldErrorf("method", "method %q is not an HTTP method token", method)
	}
	if !strings.HasPrefix(h.URI, "/") || strings.ContainsFunc(h.URI, isSpaceOrCtl) {
		return nil, fieldErrorf("uri", "uri %q must start with \"/\" and have no spaces or control characters", h.URI)
	}
	hp := &httpProbe{body: h.Body, noBody: method == "HEAD"}
	var err error
	if hp.status, hp.class, hp.want, err = expectedStatus(h); err != nil {
		return nil, err
	}
	if h.Body != nil {
		hp.bodyQ = quote([]byte(h.Body.String()))
	}
	head, err := requestHeaders(h)
	if err != nil {
		return nil, err
	}
	hp.pre = append(slices.Clip(prefix), method+" "+h.URI+" HTTP/1.1\r\n"...)
	if host, ok := head["Host"]; ok {
		hp.pre = append(hp.pre, "Host: "+host[0]+"\r\n"...)
		delete(head, "Host")
	} else {
		hp.hostLine = true
	}
	if _, ok := head["User-Agent"]; !ok {
		head["User-Agent"] = []string{userAgent}
	}
	if _, ok := head["Connection"]; !ok {
		// The target closes after the response: its end is the body's end
		// when there is no length.
		head["Connection"] = []string{"close"}
	}
	var post []byte
	for _, name := range slices.Sorted(maps.Keys(head)) {
		for _, v := range head[name] {
			post = append(post, name+": "+v+"\r\n"...)
		}
	}
	post = append(post, "\r\n"...)
	if hp.hostLine {
		hp.post = post
	} else {
		hp.pre = append(hp.pre, post...)
	}
	return hp, nil
}

// expectedStatus validates the status a response must have and describes
// it for errors ("status 200", "status 2xx"). The default is any 2xx.
func expectedStatus(h *HTTP) (status, class int, want string, err error) {
	switch {
	case h.Status != 0 && h.StatusClass != 0:
		return 0, 0, "", fieldErrorf("expect_status", "expect status is either a code (%d) or a class (%dxx), not both", h.Status, h.StatusClass)
	case h.Status != 0:
		if h.Status < 100 || h.Status > 599 {
			return 0, 0, "", fieldErrorf("expect_status", "expect status %d is not a code 100..599", h.Status)
		}
		return h.Status, 0, fmt.Sprintf("status %d", h.Status), nil
	case h.StatusClass == 0:
		return 0, 2, "status 2xx", nil
	case h.StatusClass < 1 || h.StatusClass > 5:
		return 0, 0, "", fieldErrorf("expect_status", "expect status class %d is not one of 1..5 (1xx..5xx)", h.StatusClass)
	}
	return 0, h.StatusClass, fmt.Sprintf("status %dxx", h.StatusClass), nil
}

// requestHeaders validates the configured headers and returns them keyed
// by their canonical names.
func requestHeaders(h *HTTP) (map[string][]string, error) {
	out := make(map[string][]string, len(h.Header)+2)
	for name, values := range h.Header {
		if !isToken(name) {
			return nil, fieldErrorf("headers", "header name %q is not an HTTP token", name)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fieldErrorf("headers", "header %s value %q has a line break or NUL", key, v)
			}
		}
		switch key {
		case "Content-Length", "Transfer-Encoding":
			return nil, fieldErrorf("headers", "header %s: a health probe sends no body", key)
		case "Host":
			if len(values) != 1 {
				return nil, fieldErrorf("headers", "header Host must have one value, got %q", values)
			}
		}
		out[key] = append(out[key], values...)
	}
	return out, nil
}

// run writes the request for a target on host and reads the response.
func (h *httpProbe) run(s *session, p *Prober, host string) error {
	req := p.out
	if h.hostLine {
		req = s.buf[:0]
		if need := len(p.out) + len(host) + len(h.post) + 10; need > len(s.buf) {
			req = make([]byte, 0, need) // headers too big for the pooled buffer: rare
		}
		req = append(req, p.out...)
		req = append(req, "Host: "...)
		if strings.Contains(host, ":") {
			req = append(append(append(req, '['), host...), ']') // IPv6
		} else {
			req = append(req, host...)
		}
		req = append(req, "\r\n"...)
		req = append(req, h.post...)
	}
	if err := s.send(req); err != nil {
		return err
	}
	return h.readResponse(s, p)
}

// statusOK says whether code passes.
func (h *httpProbe) statusOK(code int) bool {
	if h.status != 0 {
		return code == h.status
	}
	return code/100 == h.class
}

// isToken reports whether s is an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func isSpaceOrCtl(r rune) bool { return r <= ' ' || r == 0x7f }
