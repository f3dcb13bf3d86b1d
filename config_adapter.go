package tcpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

func init() {
	caddyconfig.RegisterAdapter("tcpproxy", Adapter{})
}

// Adapter is the config adapter `tcpproxy`: it turns the plain config.json
// format into native Caddy JSON.
//
//	{ "Apps": [ { "Name": "five-thousand", "Ports": [5001, "6000-6099"],
//	              "Targets": ["10.0.0.1:1234"] } ] }
//
// Keys match case-insensitively. Every optional field of the native app
// (`bind`, `lb_policy`, `health_checks`, ...) and the top-level
// `grace_period` are accepted under their native names. Use it with
// `caddy run --config config.json --adapter tcpproxy`.
type Adapter struct{}

// errNoApps is the plain format's one rule beyond the native JSON's: a
// config.json that proxies nothing is a mistake, not an empty config.
var errNoApps = errors.New(`no apps: want {"Apps": [{"Name": ..., "Ports": [...], "Targets": [...]}]}`)

// Adapt decodes and validates the plain config and returns the complete
// Caddy config `{"apps":{"tcpproxy":{...}}}`. Errors name the file, and the
// line and column of a JSON syntax error, or the app and field at fault.
func (Adapter) Adapt(body []byte, options map[string]any) ([]byte, []caddyconfig.Warning, error) {
	app, err := decodePlain(body)
	if err != nil {
		if filename, _ := options["filename"].(string); filename != "" {
			err = fmt.Errorf("%s: %w", filename, err)
		}
		return nil, nil, err
	}
	cfg := caddy.Config{AppsRaw: caddy.ModuleMap{"tcpproxy": caddyconfig.JSON(app, nil)}}
	out, err := json.Marshal(cfg)
	return out, nil, err
}

// decodePlain decodes the plain format through the native decoder, so both
// share their field names, defaults and messages, then validates it.
func decodePlain(body []byte) (*App, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errNoApps
	}
	app := new(App)
	if err := json.Unmarshal(body, app); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return nil, locateSyntaxError(body, syntaxErr)
		}
		if looksNative(body) {
			return nil, fmt.Errorf("%w (this is native Caddy JSON: load it without --adapter)", err)
		}
		return nil, err
	}
	if len(app.Apps) == 0 {
		return nil, errNoApps
	}
	if err := app.Validate(); err != nil {
		return nil, err
	}
	return app, nil
}

// looksNative reports whether body is native Caddy JSON, whose "apps" is
// an object where the plain format has a list: a common mix-up.
func looksNative(body []byte) bool {
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	return json.Unmarshal(body, &cfg) == nil && cfg.Apps != nil
}

// locateSyntaxError says where in body a JSON syntax error is, as a line
// and a column (in characters, both from 1). An error at the end of the
// input points just past its last character.
func locateSyntaxError(body []byte, err *json.SyntaxError) error {
	pos := int(err.Offset) - 1 // the offending byte is the last one read
	if pos < 0 || strings.HasPrefix(err.Error(), "unexpected end of JSON input") {
		pos = len(bytes.TrimRight(body, " \t\r\n"))
	}
	before := body[:min(pos, len(body))]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[lineStart:]) + 1
	return fmt.Errorf("line %d, column %d: %v", line, col, err)
}

// Interface guard.
var _ caddyconfig.Adapter = Adapter{}
