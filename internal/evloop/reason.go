package evloop

// Reason is why a proxied connection ended: the `reason` of the access log
// (SPEC, Part 2 "Connection lifecycle"). The first reason set wins.
type Reason uint8

// The reasons, in the order of the access log's documentation.
const (
	// Normal: both directions ended with EOF.
	Normal Reason = iota + 1
	// ClientError: a read, write or reset error on the client's socket.
	ClientError
	// TargetError: a read, write or reset error on the target's socket.
	TargetError
	// IdleTimeout: no byte moved in either direction for Timeouts.Idle.
	IdleTimeout
	// HalfCloseTimeout: one direction had ended and the other moved no byte
	// for Timeouts.HalfClose.
	HalfCloseTimeout
	// MaxDuration: Timeouts.MaxDuration passed since the accept.
	MaxDuration
	// TargetDown, Admin and Shutdown are given by the caller to Handle.Close
	// or Loops.CloseAll.
	TargetDown
	Admin
	Shutdown
	// NoHealthyTarget: Next gave up before any dial was made.
	NoHealthyTarget
	// DialFailed: Next gave up after every dial it offered had failed.
	DialFailed
)

var reasonNames = [...]string{
	Normal:           "normal",
	ClientError:      "client_error",
	TargetError:      "target_error",
	IdleTimeout:      "idle_timeout",
	HalfCloseTimeout: "half_close_timeout",
	MaxDuration:      "max_duration",
	TargetDown:       "target_down",
	Admin:            "admin",
	Shutdown:         "shutdown",
	NoHealthyTarget:  "no_healthy_target",
	DialFailed:       "dial_failed",
}

// String returns the reason as the access log and the metrics spell it.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "unknown"
}
