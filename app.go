package tcpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/evloop"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/probe"
)

// App is the Caddy app `tcpproxy`: a set of TCP apps, each listening on
// many ports and forwarding every connection to one of its healthy targets.
// Each app becomes a caddy-l4 server, named after the app, whose one route
// ends in the `layer4.handlers.tcpproxy` handler.
type App struct {
	// GracePeriod is how long connections being proxied may run on when
	// Caddy exits (SIGTERM, SIGINT, `caddy stop`); those still open then
	// are closed. A config reload does not wait for connections: they run
	// on to their end. Default: 10s.
	GracePeriod Duration `json:"grace_period,omitempty"`

	// Apps are the proxied applications.
	Apps []*AppConfig `json:"apps,omitempty"`

	l4      *layer4.App
	running []*runningApp
	sockets []*sharedSocket // held from Start to Stop

	// appListeners are the sockets behind each "tcpproxy-app" address
	// (listener_app.go) and their app, by appListenerKey; set in Start.
	appListeners map[string]*appListener
	// claims are the ports this config steers to sk_lookup sockets:
	// planned in Start, routed last thing in Start, given up in Stop.
	claims []plannedClaim

	// loops is the event-loop pool the app's handlers hand connections
	// to (datapath.go): acquired in Start, released in Stop; nil when
	// every connection takes the goroutine path.
	loops *evloop.Loops
	// handlers are the handlers the app generated, by app name, which
	// register in their Provision; listens says which one serves each
	// listen address, for the sockets' direct hand-over (listener.go).
	handlers map[string]*Handler
	listens  []listenRoute

	cancel  context.CancelFunc
	wg      sync.WaitGroup // the health checks, the history sampler, the name lookups
	sampled atomic.Int64   // the newest history slot sampled (history.go)
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tcpproxy",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision validates the config and turns each app into a layer4 server.
// It starts nothing: `caddy validate` and failed loads provision too.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.Validate(); err != nil {
		return err
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	// The target sets first: the handlers provisioned below pick from them.
	// (Cleanup releases them if a later step fails.)
	for _, app := range a.Apps {
		u := app.Upstreams.withDefaults()
		p, err := u.HealthChecks.prober(u.ProxyProtocol, app.errorf)
		if err != nil {
			return err
		}
		r := &runningApp{name: app.Name, ports: app.Ports, settings: u, prober: p, state: acquireAppState(app.Name)}
		a.running = append(a.running, r)
		set, err := newTargetSet(app.Name, u, &r.state.next)
		if err != nil {
			return err
		}
		r.set = set
	}
	servers := make(map[string]*layer4.Server, len(a.Apps))
	for _, app := range a.Apps {
		srv, err := app.server()
		if err != nil {
			return err
		}
		servers[app.Name] = srv
	}
	// Provisioned in Go, not loaded as a module: a loaded "layer4" app would
	// be started and stopped by Caddy too, and replace a user's own.
	a.l4 = &layer4.App{Servers: servers}
	a.handlers = make(map[string]*Handler, len(a.Apps))
	if err := a.l4.Provision(withManagingApp(ctx, a)); err != nil {
		return err
	}
	return a.routeListens()
}

// listenRoute is a range of ports on one host of the "tcpproxy" network
// and the handler of the app that listens there.
type listenRoute struct {
	host   string
	lo, hi uint
	h      *Handler
}

// routeListens records which handler serves each of the apps' listen
// addresses on the "tcpproxy" network, as layer4 will ask for them.
func (a *App) routeListens() error {
	for _, app := range a.Apps {
		if app.steered() {
			continue // its listeners are found by app (listenApp)
		}
		for _, addr := range app.listenAddrs() {
			na, err := caddy.ParseNetworkAddress(addr)
			if err != nil {
				return fmt.Errorf("app %q: %v", app.Name, err)
			}
			a.listens = append(a.listens, listenRoute{na.Host, na.StartPort, na.EndPort, a.handlers[app.Name]})
		}
	}
	return nil
}

// directFor returns how the socket of host:port hands connections to the
// app's loops without a layer4 goroutine (see view.direct), or nil.
func (a *App) directFor(host string, port uint) func(net.Conn) bool {
	for _, r := range a.listens {
		if r.host == host && r.lo <= port && port <= r.hi && r.h != nil {
			return r.h.acceptDirect
		}
	}
	return nil
}

// targetSet returns the target set of the app named name in this config,
// or nil.
func (a *App) targetSet(name string) *targetSet {
	for _, r := range a.running {
		if r.name == name {
			return r.set
		}
	}
	return nil
}

// managingAppKey marks the context in which the app provisions the
// handlers it generates (see Handler.managed).
type managingAppKey struct{}

// withManagingApp returns ctx marked as the app's: the handlers of its
// layer4 servers, provisioned in it, know the app runs their health
// checks and set their listening sockets' options.
func withManagingApp(ctx caddy.Context, a *App) caddy.Context {
	ctx.Context = context.WithValue(ctx.Context, managingAppKey{}, a)
	return ctx
}

// runningApp is an app of this config with the shared state of the app
// and its targets (the target set, which its handler, health checks and
// DNS watcher share), for the history and the status API.
type runningApp struct {
	name     string
	ports    []PortRange
	settings Upstreams // with defaults
	prober   *probe.Prober
	state    *appState // also the set's round-robin cursor
	set      *targetSet
	listener string          // the listener mode in effect, set in Start
	steered  []*sharedSocket // its sk_lookup sockets, one per bind host
}

// server builds the layer4 server of an app.
func (c *AppConfig) server() (*layer4.Server, error) {
	handler, err := json.Marshal(struct {
		Module string `json:"handler"`
		*Handler
	}{"tcpproxy", &Handler{App: c.Name, Upstreams: c.Upstreams}})
	if err != nil {
		return nil, fmt.Errorf("app %q: %v", c.Name, err)
	}
	listen := c.listenAddrs()
	if c.steered() {
		listen = c.appListenAddrs()
	}
	return &layer4.Server{
		Listen: listen,
		Routes: layer4.RouteList{{HandlersRaw: []json.RawMessage{handler}}},
	}, nil
}

// listenAddrs are the app's Caddy network addresses on the reload-safe
// "tcpproxy" network (see listener.go), one per bind host and port range.
func (c *AppConfig) listenAddrs() []string {
	var out []string
	for _, b := range c.bindHosts() {
		for _, p := range c.Ports {
			hostPort := net.JoinHostPort(b, strconv.Itoa(p.Low))
			if p.High != p.Low {
				hostPort += "-" + strconv.Itoa(p.High)
			}
			out = append(out, listenNetwork+"/"+hostPort)
		}
	}
	return out
}

// Start binds every port of every app (or fails naming the app and port,
// with nothing left open), starts the DNS lookups of `srv:`/`dns:`
// targets (waiting up to firstLookupWait for the first answers of targets
// no previous config knew: connections queue on the bound sockets
// meanwhile), then starts serving and health checking. The routes of
// sk_lookup apps are written last: a config that fails to start leaves the
// running one's routes as they were (and an sk_lookup app's new ports
// answer only from then on).
func (a *App) Start() error {
	if err := a.listen(); err != nil {
		a.releaseSockets()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.watchDNS(ctx)
	if len(a.Apps) > 0 {
		a.loops = loopPools.acquire()
	}
	for _, r := range a.running {
		if len(r.set.named) > 0 {
			a.wg.Go(func() { r.set.resolveNames(ctx) })
		}
	}
	if err := a.l4.Start(); err != nil {
		return a.abortStart(cancel, err)
	}
	if err := a.steer(); err != nil {
		return a.abortStart(cancel, err)
	}
	for _, r := range a.running {
		if hc := r.settings.HealthChecks; hc.Disabled {
			takeOver(r.set.current(), time.Duration(hc.DownInterval))
			continue
		}
		takeOver(r.set.current(), 0)
		a.wg.Add(1)
		go func(hc *healthChecker) {
			defer a.wg.Done()
			hc.run(ctx)
		}(newHealthChecker(r.set.current, r.settings, r.prober, a.logger))
	}
	a.startSampler(ctx)
	a.logger.Info("started", zap.Int("apps", len(a.Apps)), zap.Int("sockets", len(a.sockets)))
	return nil
}

// abortStart undoes a Start that failed after binding the sockets and
// starting the DNS watchers, and returns err.
func (a *App) abortStart(cancel context.CancelFunc, err error) error {
	_ = a.l4.Stop() // layer4 leaves the listeners it opened before the error
	a.releaseSockets()
	cancel()
	a.wg.Wait()
	loopPools.release(a.loops)
	return err
}

// watchDNS starts the DNS watchers of the apps that have `srv:`/`dns:`
// targets; they end with ctx. It waits up to firstLookupWait for the
// first answers the apps do not have from a previous config.
func (a *App) watchDNS(ctx context.Context) {
	deadline := time.NewTimer(firstLookupWait)
	defer deadline.Stop()
	var ready []<-chan struct{}
	for _, r := range a.running {
		ready = append(ready, r.set.watch(ctx, &a.wg, a.logger))
	}
	for _, c := range ready {
		select {
		case <-c:
		case <-deadline.C:
			return
		}
	}
}

func (a *App) releaseSockets() {
	a.claims = nil // routed claims were given up already (unsteer)
	for _, s := range a.sockets {
		sockets.release(s)
	}
	a.sockets = nil
}

// Stop stops accepting and ends the health checks and the history
// sampler. On a reload it returns at once: sockets kept by the new config
// stay open, and connections being proxied run on. On exit it waits up to
// grace_period for the connections to end, then closes them.
func (a *App) Stop() error {
	a.unsteer() // first: new connections go to the new config's sockets, or are refused
	a.drainBypassed()
	_ = a.l4.Stop()
	a.releaseSockets()
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if caddy.Exiting() {
		grace := time.Duration(a.GracePeriod)
		if grace == 0 {
			grace = defaultGracePeriod
		}
		if cut := live.drain(grace); cut > 0 {
			a.logger.Warn("grace period over: closed connections still open",
				zap.Duration("grace_period", grace), zap.Int("connections", cut))
		}
	}
	// The loops exit once no config holds them and their connections
	// have ended: a reload cuts nothing.
	loopPools.release(a.loops)
	return nil
}

// Cleanup releases the shared target state this config held. It leaves
// a.running as it is: the status API may be reading it while Caddy cleans
// up the old config after a reload.
func (a *App) Cleanup() error {
	for _, r := range a.running {
		if r.set != nil {
			r.set.release()
		}
		releaseAppState(r.state)
	}
	return nil
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
