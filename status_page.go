package tcpproxy

import (
	_ "embed"
	"io"
	"net/http"
	"strings"
)

// statusPage is the status page (status.html): self-contained, its styles
// and script inline, nothing loaded from elsewhere. The status JSON goes
// where the page has statusPageMarker, so that the page shows at once;
// its script then refreshes it from the same URL with ?format=json.
//
//go:embed status.html
var statusPage string

const statusPageMarker = "/*STATUS*/"

// statusPageHead and statusPageTail are the page before and after the
// marker.
var statusPageHead, statusPageTail = func() (string, string) {
	head, tail, ok := strings.Cut(statusPage, statusPageMarker)
	if !ok {
		panic("status.html has no " + statusPageMarker)
	}
	return head, tail
}()

// statusPageCSP allows the page's inline style and script and its fetches
// of its own URL, and nothing else.
const statusPageCSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'"

// writeStatusPage writes the page with a's status, history included,
// embedded. json.Marshal escapes <, > and &, so the embedded JSON cannot
// end the script element early.
func writeStatusPage(w http.ResponseWriter, a *App) error {
	body, err := statusJSON(a, statusOptions{history: true})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", statusPageCSP)
	if _, err := io.WriteString(w, statusPageHead); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	_, err = io.WriteString(w, statusPageTail)
	return err
}
