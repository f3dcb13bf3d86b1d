package evloop

import "github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"

// Reason is why a proxied connection ended: the `reason` of the access log
// (SPEC, Part 2 "Connection lifecycle"). It is relay.Reason, so that both
// data paths report their ends alike. The first reason set wins.
type Reason = relay.Reason

// The reasons, in the order of the access log's documentation.
const (
	// Normal: both directions ended with EOF.
	Normal = relay.Normal
	// ClientError: a read, write or reset error on the client's socket.
	ClientError = relay.ClientError
	// TargetError: a read, write or reset error on the target's socket.
	TargetError = relay.TargetError
	// IdleTimeout: no byte moved in either direction for Timeouts.Idle.
	IdleTimeout = relay.IdleTimeout
	// HalfCloseTimeout: one direction had ended and the other moved no byte
	// for Timeouts.HalfClose.
	HalfCloseTimeout = relay.HalfCloseTimeout
	// MaxDuration: Timeouts.MaxDuration passed since the accept.
	MaxDuration = relay.MaxDuration
	// TargetDown, Admin and Shutdown are given by the caller to Handle.Close
	// or Loops.CloseAll.
	TargetDown = relay.TargetDown
	Admin      = relay.Admin
	Shutdown   = relay.Shutdown
	// NoHealthyTarget: Next gave up before any dial was made.
	NoHealthyTarget = relay.NoHealthyTarget
	// DialFailed: Next gave up after every dial it offered had failed.
	DialFailed = relay.DialFailed
)
