package tcpproxy

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The Caddyfile forms of the health probe settings (the entries are in
// appDirectives).

// parseEscaped parses the one value of health_send or health_expect, with
// the escapes \r \n \t \\ \" and \xHH: a Caddyfile string keeps its
// backslashes, and protocols want line ends.
func parseEscaped(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	val, err := oneArg(d)
	if err != nil {
		return err
	}
	s, err := unescape(val)
	if err != nil {
		return d.Errf("%s: %q: %v", name, val, err)
	}
	if !utf8.ValidString(s) {
		return d.Errf("%s: %q is not UTF-8 text once unescaped: give such bytes with %s_hex", name, val, name)
	}
	*dst = s
	return nil
}

// unescape replaces the escapes \r \n \t \0 \\ \" and \xHH in s.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errBadEscape(`a lone \ at the end`)
		}
		i++
		switch s[i] {
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '0':
			b.WriteByte(0)
		case '\\', '"':
			b.WriteByte(s[i])
		case 'x':
			if i+2 >= len(s) {
				return "", errBadEscape(`\x wants two hex digits`)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", errBadEscape(`\x wants two hex digits, got ` + strconv.Quote(s[i+1:i+3]))
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", errBadEscape(`\` + string(s[i]) + ` is not an escape`)
		}
	}
	return b.String(), nil
}

func errBadEscape(what string) error {
	return errors.New(what + ` (escapes: \r \n \t \0 \\ \" \xHH)`)
}

// parseHexArgs parses health_send_hex or health_expect_hex: one or more
// values of hex digits, kept as one string separated by spaces (validate
// decodes it).
func parseHexArgs(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("%s: want hex digits, got no value", name)
	}
	*dst = strings.Join(args, " ")
	return nil
}

// parseHealthHeaders parses `health_headers { <name> <value>... }`: a
// header per line, repeatable, each with one value or more.
func parseHealthHeaders(d *caddyfile.Dispenser, c *AppConfig) error {
	if d.NextArg() {
		return d.Errf("health_headers: want a block { <name> <value>... }, got %q", d.Val())
	}
	hc := health(c)
	if hc.Headers == nil {
		hc.Headers = http.Header{}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		values := d.RemainingArgs()
		if len(values) == 0 {
			return d.Errf("health_headers: %s: want at least one value", name)
		}
		hc.Headers[name] = append(hc.Headers[name], values...)
	}
	if len(hc.Headers) == 0 {
		return d.Errf("health_headers: want a block { <name> <value>... } with at least one header")
	}
	return nil
}
