package tcpproxy

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/sklookup"
)

// Listening in the sk_lookup and auto modes.
//
// Provision cannot know which sockets such an app will get: whether
// sk_lookup is available is found out in Start (Provision runs for
// `caddy validate` and `caddy adapt` too, unprivileged). So the app's
// layer4 server listens on one address per bind host on the network
// "tcpproxy-app" (`tcpproxy-app/[<app>@<host>]:0`), and Start decides
// what stands behind it before starting the layer4 servers: the app's
// steered socket, or (auto without sk_lookup) all its per-port sockets,
// merged into one listener. Either way a 30,000-port app has one layer4
// listener and accept loop per bind host, not 30,000.
const appNetwork = "tcpproxy-app"

func init() {
	caddy.RegisterNetwork(appNetwork, listenApp)
}

// appListenAddrs are the app's addresses on the "tcpproxy-app" network,
// one per bind host.
func (c *AppConfig) appListenAddrs() []string {
	var out []string
	for _, h := range c.bindHosts() {
		out = append(out, appNetwork+"/"+net.JoinHostPort(appListenerKey(c.Name, h), "0"))
	}
	return out
}

// appListener is what stands behind one "tcpproxy-app" address: the
// sockets of one app on one bind host.
type appListener struct {
	app     string
	sockets []*sharedSocket
}

// appListenerKey names an app's listener on a bind host, as the host
// part of its "tcpproxy-app" address.
func appListenerKey(app, host string) string { return app + "@" + trimBrackets(host) }

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// listenApp is the caddy.ListenerFunc of the "tcpproxy-app" network: the
// listener Start chose for the app and host. ctx is the one the tcpproxy
// app provisioned its layer4 servers in, which carries the app.
func listenApp(ctx context.Context, _, host, _ string, _ uint, _ net.ListenConfig) (any, error) {
	a, ok := ctx.Value(managingAppKey{}).(*App)
	if !ok {
		return nil, fmt.Errorf("%s network: only the tcpproxy app's own servers listen here", appNetwork)
	}
	l := a.appListeners[host]
	if l == nil || len(l.sockets) == 0 {
		return nil, fmt.Errorf("%s network: no listener was prepared for %q", appNetwork, host)
	}
	sockets.addRefs(l.sockets)
	v := newView(l.sockets...)
	if h := a.handlers[l.app]; h != nil {
		v.direct = h.acceptDirect
	}
	return v, nil
}

// chooseModes returns the listener mode each app gets in Start: sockets,
// or sk_lookup where configured (or auto) and available. sk_lookup being
// unavailable fails an app configured with it, and falls back for auto
// with one warning.
func (a *App) chooseModes() ([]string, error) {
	modes := make([]string, len(a.Apps))
	var unavailable error
	checked := false
	var fellBack []string
	for i, app := range a.Apps {
		mode := app.Listening.withDefaults().Listener
		if mode == listenerSockets {
			modes[i] = mode
			continue
		}
		if !checked {
			unavailable, checked = sklookup.Available(), true
		}
		switch {
		case unavailable == nil:
			modes[i] = listenerSkLookup
		case mode == listenerAuto:
			modes[i] = listenerSockets
			fellBack = append(fellBack, app.Name)
		default:
			return nil, app.errorf("listener", "sk_lookup is unavailable: %v; it needs Linux ≥ 5.9 with CAP_BPF and "+
				"CAP_NET_ADMIN (\"auto\" falls back to one socket per port instead)", unavailable)
		}
	}
	if len(fellBack) > 0 {
		a.logger.Warn("listener auto: sk_lookup is unavailable, listening with one socket per port",
			zap.Strings("apps", fellBack), zap.Error(unavailable),
			zap.String("needs", "Linux ≥ 5.9, CAP_BPF and CAP_NET_ADMIN"))
	}
	return modes, nil
}

// listen acquires every listening socket of the config (or fails naming
// the app, with nothing left open by it): per-port sockets first, so that
// no steered socket's own ephemeral port takes one of them; then the
// steered sockets, each checked for ports that another socket listens on.
func (a *App) listen() error {
	modes, err := a.chooseModes()
	if err != nil {
		return err
	}
	a.appListeners = make(map[string]*appListener)
	for i, app := range a.Apps {
		a.running[i].listener = modes[i]
		if modes[i] != listenerSockets {
			continue
		}
		keepalive := a.running[i].settings.Keepalive.keepAliveConfig()
		for _, h := range app.bindHosts() {
			for _, p := range app.Ports {
				for port := p.Low; port <= p.High; port++ {
					addr := net.JoinHostPort(h, strconv.Itoa(port))
					s, err := a.holdSocket(sockets.acquire(addr))
					if err == nil {
						err = s.setKeepalive(keepalive)
					}
					if err != nil {
						return fmt.Errorf("app %q: ports: listening on %s: %v", app.Name, addr, err)
					}
					if app.steered() { // auto, fallen back
						key := appListenerKey(app.Name, h)
						if a.appListeners[key] == nil {
							a.appListeners[key] = &appListener{app: app.Name}
						}
						a.appListeners[key].sockets = append(a.appListeners[key].sockets, s)
					}
				}
			}
		}
	}
	for i, app := range a.Apps {
		if modes[i] == listenerSkLookup {
			if err := a.listenSteered(app, a.running[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// holdSocket keeps an acquired socket until Stop.
func (a *App) holdSocket(s *sharedSocket, err error) (*sharedSocket, error) {
	if err == nil {
		a.sockets = append(a.sockets, s)
	}
	return s, err
}

// listenSteered acquires the app's steered socket on each bind host and
// plans its routes, refusing ports another socket listens on.
func (a *App) listenSteered(app *AppConfig, r *runningApp) error {
	ports := portSetOf(app.Ports)
	keepalive := r.settings.Keepalive.keepAliveConfig()
	for _, h := range app.bindHosts() {
		s, err := a.holdSocket(sockets.acquireSteered(app.Name, h))
		if err == nil {
			err = s.setKeepalive(keepalive)
		}
		if err != nil {
			return app.errorf("listener", "sk_lookup on %s: %v", describeHost(normalizeHost(h)), err)
		}
		r.steered = append(r.steered, s)
		a.appListeners[appListenerKey(app.Name, h)] = &appListener{app: app.Name, sockets: []*sharedSocket{s}}
		a.claims = append(a.claims, plannedClaim{s, ports})
		l, err := sockets.foreignListener(h, ports)
		if err != nil {
			return app.errorf("ports", "looking for other listeners on %s: %v", describeHost(normalizeHost(h)), err)
		}
		if l != nil {
			return app.errorf("ports", "port %d on %s is taken by another listening socket (%s); "+
				"sk_lookup would steal its connections: take the port out of the app's ports, "+
				"or use \"listener\": \"sockets\"", l.Addr.Port(), describeHost(normalizeHost(h)), describeListener(l))
		}
	}
	return nil
}

// plannedClaim is a steered socket and the ports this config routes to
// it in Start.
type plannedClaim struct {
	s     *sharedSocket
	ports *portSet
}

// steer routes every planned claim: the last step of Start, after which
// nothing can fail. On error it undoes what it routed.
func (a *App) steer() error {
	for i, c := range a.claims {
		if err := sockets.claim(c.s, a, c.ports); err != nil {
			a.claims = a.claims[:i]
			a.unsteer()
			return fmt.Errorf("app %q: listener: routing %d ports to the sk_lookup listener: %v",
				c.s.steer.key.app, c.ports.count(), err)
		}
	}
	return nil
}

// unsteer gives up the config's claims: the ports no other config claims
// answer RST again (or reach another config's socket).
func (a *App) unsteer() {
	for _, c := range a.claims {
		if err := sockets.unclaim(c.s, a); err != nil {
			a.logger.Error("sk_lookup: giving up routes", zap.String("app", c.s.steer.key.app), zap.Error(err))
		}
	}
	a.claims = nil
}
