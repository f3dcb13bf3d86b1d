package probe

import (
	"fmt"
	"unicode/utf8"
)

// ParseStatus parses an expected HTTP status as the config gives it: an
// exact code ("200": code 200, class 0) or a class ("2xx" or "2XX": code
// 0, class 2). Codes are 100..599, classes 1xx..5xx.
func ParseStatus(s string) (code, class int, err error) {
	bad := fmt.Errorf("expect status %q must be a code 100..599 or a class 1xx..5xx", s)
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return 0, 0, bad
	}
	if (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X') {
		return 0, int(s[0] - '0'), nil
	}
	for i := 1; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, bad
		}
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0'), 0, nil
}

// ParseHex decodes the bytes of send_hex or expect_hex. Each byte is two
// hex digits (either case); spaces, tabs and line breaks may separate
// bytes, never the two digits of one byte ("2a 31 0d 0a" and "2a310d0a"
// are the same). Errors give the 1-based position of the offending
// character.
func ParseHex(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)/2)
	for i := 0; i < len(s); {
		c := s[i]
		if isHexSpace(c) {
			i++
			continue
		}
		hi, ok := unhex(c)
		if !ok {
			return nil, badHexChar(s, i)
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("hex %q: the byte at position %d has one digit; each byte is two hex digits", s, i+1)
		}
		lo, ok := unhex(s[i+1])
		if !ok {
			if isHexSpace(s[i+1]) {
				return nil, fmt.Errorf("hex %q: the byte at position %d has one digit; each byte is two hex digits", s, i+1)
			}
			return nil, badHexChar(s, i+1)
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hex %q has no bytes", s)
	}
	return out, nil
}

func badHexChar(s string, i int) error {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return fmt.Errorf("hex %q: %q at position %d is not a hex digit (0-9, a-f)", s, r, i+1)
}

func isHexSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
