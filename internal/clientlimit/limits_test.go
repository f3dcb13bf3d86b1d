package clientlimit

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	good := []Limits{{}, {MaxConcurrent: 1}, {Rate: 1, Window: time.Nanosecond}, {MaxConcurrent: 5, Rate: 100, Window: 10 * time.Second}}
	for _, l := range good {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	bad := []struct {
		l    Limits
		want string
	}{
		{Limits{MaxConcurrent: -1}, "max_connections_per_client -1: want 0 (no limit) or a number from 1 to"},
		{Limits{MaxConcurrent: 1 << 40}, "max_connections_per_client 1099511627776: want"},
		{Limits{Rate: -3, Window: time.Second}, "client_rate_limit connections -3: want a number from 1 to"},
		{Limits{Rate: 10}, `client_rate_limit window "0s": want a positive duration such as "10s"`},
		{Limits{Rate: 10, Window: -time.Second}, `client_rate_limit window "-1s": want a positive duration`},
		{Limits{Window: time.Second}, `client_rate_limit connections 0 with window "1s": want 1 or more connections`},
	}
	for _, c := range bad {
		err := c.l.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to contain %q", c.l, err, c.want)
		}
		if _, err := New(c.l); err == nil {
			t.Errorf("New(%+v) accepted invalid limits", c.l)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{OK: "ok", ClientLimit: "client_limit", RateLimited: "rate_limited", 9: "Verdict(9)"} {
		if v.String() != want {
			t.Errorf("Verdict %d: %q, want %q", v, v.String(), want)
		}
	}
}

// Slots must cover a full Window however it divides.
func TestSlotWidthCoversWindow(t *testing.T) {
	for _, w := range []time.Duration{1, 6, 7, 8, 13, time.Second, 10 * time.Second, 7*time.Second + 1} {
		p := paramsOf(Limits{Rate: 1, Window: w}, nil)
		if covered := time.Duration(p.width * (slots - 1)); covered < w || covered >= w+slots-1 {
			t.Errorf("window %v: %d slots of %d cover %v", w, slots-1, p.width, covered)
		}
	}
}
