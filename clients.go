package tcpproxy

import (
	"time"

	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/acl"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/clientlimit"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
)

// clientChecks are a handler's Clients settings, ready for the hot path.
// Every part is nil when its setting is unset, so that an app without
// them pays a few nil checks per connection and nothing more.
type clientChecks struct {
	trusted, allow, deny *acl.Set
	limiter              *clientlimit.Limiter // the app's, shared across reloads
	headerTimeout        time.Duration
}

// proxyHeaderTimeout is how long a trusted source has to send its PROXY
// header. A variable so that tests need not wait 5 s for a slow header;
// handlers copy it at Provision.
var proxyHeaderTimeout = 5 * time.Second

// newClientChecks compiles c (validated) for a handler of the app whose
// shared state is st.
func newClientChecks(c *Clients, st *appState) (clientChecks, error) {
	var cc clientChecks
	for _, l := range []struct {
		dst     **acl.Set
		entries []string
	}{{&cc.trusted, c.AcceptProxyProtocol}, {&cc.allow, c.Allow}, {&cc.deny, c.Deny}} {
		if len(l.entries) == 0 {
			continue
		}
		set, err := acl.Parse(l.entries)
		if err != nil {
			return cc, err
		}
		*l.dst = set
	}
	lim, err := st.clientLimiter(c.limits())
	cc.limiter, cc.headerTimeout = lim, proxyHeaderTimeout
	return cc, err
}

// clientLimiter returns the app's per-client limiter set to l, or nil
// when l sets no limit. The limiter is made once per app and updated on
// every Provision, so a reload keeps the counts of the connections still
// open and the clients' rate history. Without limits the app keeps its
// limiter, unused, so that connections admitted by an older config still
// release their counts on it and a later config with limits sees them;
// it goes with the app's state when no config has the app any more.
func (s *appState) clientLimiter(l clientlimit.Limits) (*clientlimit.Limiter, error) {
	if l == (clientlimit.Limits{}) {
		return nil, nil
	}
	s.limiterMu.Lock()
	defer s.limiterMu.Unlock()
	if s.limiter == nil {
		lim, err := clientlimit.New(l)
		if err != nil {
			return nil, err
		}
		s.limiter = lim
		return lim, nil
	}
	return s.limiter, s.limiter.Update(l)
}

// admit runs the per-client checks on a new connection, in order: the
// PROXY header of a trusted source, deny and allow, the per-client
// limits. When it refuses the client it says why; when it admits it,
// acquired says that the caller must release the client on the limiter
// when the connection ends.
func (h *Handler) admit(s *session) (reason history.Reason, refused, acquired bool) {
	cc := &h.clients
	if cc.trusted != nil && cc.trusted.Contains(s.client.Addr()) {
		s.headerRead = true
		if err := h.readProxyHeader(s); err != nil {
			h.logger.Debug("bad PROXY header", zap.String("app", h.App),
				zap.Stringer("remote", s.cx.RemoteAddr()), zap.Error(err))
			return reasonBadProxyHeader, true, false
		}
	}
	return h.admitClient(s)
}

// admitClient runs the checks of admit that follow the PROXY header:
// deny and allow, then the per-client limits.
func (h *Handler) admitClient(s *session) (reason history.Reason, refused, acquired bool) {
	cc := &h.clients
	ip := s.client.Addr()
	if cc.deny.Contains(ip) || cc.allow != nil && !cc.allow.Contains(ip) {
		return reasonDenied, true, false
	}
	if cc.limiter == nil {
		return 0, false, false
	}
	switch cc.limiter.Acquire(ip, clientlimit.Now()) {
	case clientlimit.OK:
		return 0, false, true
	case clientlimit.ClientLimit:
		return reasonClientLimit, true, false
	default:
		return reasonRateLimited, true, false
	}
}
