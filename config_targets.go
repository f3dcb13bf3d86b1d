package tcpproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/balance"
)

// TargetConfig is one entry of an app's targets: in JSON either the
// string "host:port" or an object with a weight and a backup flag,
//
//	"targets": ["10.0.0.1:5432", {"address": "10.0.0.2:5432", "weight": 3},
//	            {"address": "10.0.0.9:5432", "backup": true}]
//
// and in the Caddyfile `targets <address>...` or
// `target <address> [weight <n>] [backup]`.
type TargetConfig struct {
	// Address is where connections go: `host:port`, with host names
	// looked up in the background every dns_refresh (resolve.go); or
	// `srv:<name>` or `dns:<host>:<port>`,
	// whose DNS records are each a target (see Discovery). Required.
	Address string `json:"address,omitempty"`

	// Weight is the target's share of new connections relative to the
	// app's other targets: 1..256. Default: 1.
	Weight int `json:"weight,omitempty"`

	// Backup makes the target a standby: it takes new connections only
	// while no non-backup target of the app is eligible (healthy and
	// ready). Default: false.
	Backup bool `json:"backup,omitempty"`
}

// UnmarshalJSON reads a target as a string or, strictly, as an object.
// An error in an object names the target by its address when it has one.
func (t *TargetConfig) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		*t = TargetConfig{}
		return json.Unmarshal(b, &t.Address)
	}
	type plain TargetConfig // no methods: avoids recursion
	*t = TargetConfig{}
	err := decodeFields(b, (*plain)(t), "")
	if err == nil && t.Weight == 0 && hasKey(b, "weight") {
		err = fmt.Errorf("weight: %v", balance.CheckWeight(0))
	}
	if err == nil {
		return nil
	}
	// The address first, as decodeApp reads the app's name, since the
	// field at fault may come before it.
	var named struct {
		Address string `json:"address"`
	}
	_ = json.Unmarshal(b, &named)
	if named.Address == "" {
		return err
	}
	return fmt.Errorf("%q: %v", clip(named.Address), err)
}

// hasKey reports whether the JSON object b has the key (case-insensitive,
// as the decoder matches keys).
func hasKey(b []byte, key string) bool {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(b, &obj)
	for k := range obj {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// MarshalJSON writes a target with neither a weight nor the backup flag
// as its address string, so that adapted configs read as they were
// written.
func (t TargetConfig) MarshalJSON() ([]byte, error) {
	if t.Weight <= 1 && !t.Backup {
		return json.Marshal(t.Address)
	}
	type plain TargetConfig
	return json.Marshal(plain(t))
}

// weight is the target's weight with the default filled.
func (t TargetConfig) weight() int { return max(t.Weight, 1) }

// validateTargets checks the targets of an app: each address, each
// weight, and that no address is listed twice, whatever the form.
func validateTargets(ts []TargetConfig, errorf func(field, format string, args ...any) error) error {
	if len(ts) == 0 {
		return errorf("targets", "at least one target is required")
	}
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if _, ok, err := discoverySource(t); ok {
			if err != nil {
				return errorf("targets", "%v", err)
			}
		} else if err := validateAddress(t.Address); err != nil {
			return errorf("targets", "%q: %v", t.Address, err)
		}
		if t.Weight != 0 {
			if err := balance.CheckWeight(t.Weight); err != nil {
				return errorf("targets", "%q: %v", t.Address, err)
			}
		}
		if seen[t.Address] {
			return errorf("targets", "%q is listed twice", t.Address)
		}
		seen[t.Address] = true
	}
	return nil
}

// validateAddress checks a `host:port` address without resolving it.
func validateAddress(t string) error {
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		return fmt.Errorf("want host:port: %v", err)
	}
	if host == "" {
		return fmt.Errorf("missing host")
	}
	if strings.ContainsAny(host, " /\t") {
		return fmt.Errorf("invalid host %q", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q: want 1..65535", port)
	}
	return nil
}
