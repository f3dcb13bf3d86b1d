package relay

// Reason says why a client connection ended. Its String is the `reason`
// of the access log and of caddy_tcpproxy_closed_connections_total (or,
// for the reasons of a connection that never reached a target, of
// caddy_tcpproxy_rejected_connections_total). Both data paths use it:
// this package's goroutines and internal/evloop's event loops.
type Reason uint8

// The reasons a proxied connection ends. The zero value means "not ended".
const (
	// Normal: both directions ended with an EOF that was passed on.
	Normal Reason = iota + 1
	// ClientError: the client's socket failed (reset, broken pipe).
	ClientError
	// TargetError: the target's socket failed.
	TargetError
	// IdleTimeout: no byte moved either way for Timeouts.Idle.
	IdleTimeout
	// HalfCloseTimeout: one direction had ended and the other moved no
	// byte for Timeouts.HalfClose.
	HalfCloseTimeout
	// MaxDuration: the connection reached Timeouts.MaxDuration.
	MaxDuration
	// TargetDown: active health checks marked its target down.
	TargetDown
	// Admin: an operator closed it through the admin API.
	Admin
	// Shutdown: Caddy exited and the grace period ended.
	Shutdown
)

// MaxReason is the highest Reason of a connection that reached a target:
// arrays indexed by those reasons have MaxReason+1 entries.
const MaxReason = Shutdown

// The reasons of a connection that never reached a target: the event
// loop reports them when its session gives up dialling (the goroutine
// path rejects such a client before it relays anything).
const (
	// NoHealthyTarget: no target was eligible, so none was dialled.
	NoHealthyTarget Reason = MaxReason + 1 + iota
	// DialFailed: every target dialled failed.
	DialFailed
)

// Reasons lists every reason of a connection that reached a target, in
// order: for metrics set up once per app.
var Reasons = []Reason{Normal, ClientError, TargetError, IdleTimeout, HalfCloseTimeout,
	MaxDuration, TargetDown, Admin, Shutdown}

var reasonNames = [...]string{"", "normal", "client_error", "target_error", "idle_timeout",
	"half_close_timeout", "max_duration", "target_down", "admin", "shutdown",
	"no_healthy_target", "dial_failed"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}
