package history

import "time"

// Reason is why a client connection was closed without being proxied.
type Reason int

// The rejection reasons, as named in the status API and metrics.
const (
	NoHealthyTarget Reason = iota
	DialFailed
	MaxConnections
	Denied
	ClientLimit
	RateLimited
	BadProxyHeader
	NumReasons // how many reasons there are
)

var reasonNames = [NumReasons]string{
	"no_healthy_target", "dial_failed", "max_connections", "denied",
	"client_limit", "rate_limited", "bad_proxy_header",
}

// String returns the reason's name, e.g. "no_healthy_target".
func (r Reason) String() string {
	if r < 0 || r >= NumReasons {
		return "unknown"
	}
	return reasonNames[r]
}

// Rejections are an app's cumulative rejection counts, indexed by Reason.
type Rejections [NumReasons]uint64

// App is the history of one app: the connections and bytes of its targets
// (added by Target.Record), its active connections and its rejections by
// reason. Keep it in the app state that outlives a config reload.
type App struct{ r ring }

// NewApp returns an empty app history of fixed size (about 8.6 KB).
func NewApp() *App {
	a := new(App)
	a.r.init(appCols)
	return a
}

// Record stores the app's active connections and what its rejection
// counters have grown since the last Record in the slot of now. Like
// Target.Record it is a no-op for a slot already recorded and does not
// allocate. Call it in the same round as its targets' Records.
func (a *App) Record(now time.Time, active int64, rejected Rejections) bool {
	n := SlotOf(now)
	r := &a.r
	r.mu.Lock()
	defer r.mu.Unlock()
	span, ok := r.begin(n)
	if !ok {
		return false
	}
	for i, cur := range rejected {
		d := r.delta(i, cur)
		r.spread(n, span, targetCols+i, d)
		r.spread(n, span, colRejections, d)
	}
	r.gauge(n, span, colActive, active)
	return true
}

// addTarget adds one target's deltas, spread over span slots ending with
// n, to the app's totals.
func (a *App) addTarget(n, span int64, conns, up, down uint64) {
	r := &a.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open(n)
	r.spread(n, span, colConnections, conns)
	r.spread(n, span, colBytesUp, up)
	r.spread(n, span, colBytesDown, down)
}

// Snapshot returns the app's history for the status API, with its
// rejections by reason.
func (a *App) Snapshot() Snapshot { return a.r.snapshot(true) }

// Rates returns the app's rates over the newest recorded slot.
func (a *App) Rates() Rates { return a.r.rates() }
