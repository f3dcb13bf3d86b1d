package probe

import (
	"bytes"
	"testing"
)

func TestParseStatus(t *testing.T) {
	good := []struct {
		in          string
		code, class int
	}{{"200", 200, 0}, {"100", 100, 0}, {"599", 599, 0}, {"2xx", 0, 2}, {"5XX", 0, 5}, {"1xx", 0, 1}}
	for _, c := range good {
		code, class, err := ParseStatus(c.in)
		if err != nil || code != c.code || class != c.class {
			t.Errorf("ParseStatus(%q) = %d, %d, %v; want %d, %d", c.in, code, class, err, c.code, c.class)
		}
	}
	for _, in := range []string{"999", "600", "099", "6xx", "0xx", "abc", "", "20", "2000", "2x0", "x00", " 200", "20x"} {
		_, _, err := ParseStatus(in)
		want := `expect status "` + in + `" must be a code 100..599 or a class 1xx..5xx`
		if err == nil || err.Error() != want {
			t.Errorf("ParseStatus(%q): %v", in, err)
		}
	}
}

func TestParseHex(t *testing.T) {
	good := map[string][]byte{
		"2a310d0a":       {0x2a, 0x31, 0x0d, 0x0a},
		"2A 31\t0D\n0a":  {0x2a, 0x31, 0x0d, 0x0a},
		" ff ":           {0xff},
		"00":             {0},
		"de ad\r\nbe ef": {0xde, 0xad, 0xbe, 0xef},
	}
	for in, want := range good {
		got, err := ParseHex(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParseHex(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":      `hex "" has no bytes`,
		"  ":    `hex "  " has no bytes`,
		"2a3":   `hex "2a3": the byte at position 3 has one digit; each byte is two hex digits`,
		"2 a":   `hex "2 a": the byte at position 1 has one digit; each byte is two hex digits`,
		"2g":    `hex "2g": 'g' at position 2 is not a hex digit (0-9, a-f)`,
		"0x2a":  `hex "0x2a": 'x' at position 2 is not a hex digit (0-9, a-f)`,
		"2a,3b": `hex "2a,3b": ',' at position 3 is not a hex digit (0-9, a-f)`,
		"aé":    `hex "aé": 'é' at position 2 is not a hex digit (0-9, a-f)`,
	}
	for in, want := range bad {
		_, err := ParseHex(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseHex(%q):\n got %v\nwant %s", in, err, want)
		}
	}
}
