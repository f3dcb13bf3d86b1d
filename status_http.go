package tcpproxy

import (
	"fmt"
	"net/http"
	"strings"
)

// Answering a status request, for the admin API and the HTTP handler
// alike: the page or the JSON, chosen by ?format= or the Accept header.

// statusQuery is what a status request asks for.
type statusQuery struct {
	json bool // the JSON rather than the page
	statusOptions
}

// parseStatusQuery reads a status request: `?format=json` or `html`
// decides; without it, an Accept header naming text/html gets the page
// and one naming application/json the JSON, and any other gets the JSON
// when jsonByDefault. The JSON has the history unless `?history=0`.
func parseStatusQuery(r *http.Request, jsonByDefault bool) (statusQuery, error) {
	q := statusQuery{json: jsonByDefault, statusOptions: statusOptions{history: true}}
	v := r.URL.Query()
	switch f := v.Get("format"); f {
	case "json":
		q.json = true
	case "html":
		q.json = false
	case "":
		accept := r.Header.Get("Accept")
		if strings.Contains(accept, "text/html") {
			q.json = false
		} else if strings.Contains(accept, "application/json") {
			q.json = true
		}
	default:
		return q, fmt.Errorf(`format %q: want "json" or "html"`, f)
	}
	switch h := v.Get("history"); h {
	case "", "1", "true":
	case "0", "false":
		q.history = false
	default:
		return q, fmt.Errorf(`history %q: want "1" (the default) or "0"`, h)
	}
	return q, nil
}

// writeStatus answers a status request about a's apps (none for a nil
// a). The page always carries the history.
func writeStatus(w http.ResponseWriter, a *App, q statusQuery) error {
	if !q.json {
		return writeStatusPage(w, a)
	}
	body, err := statusJSON(a, q.statusOptions)
	if err != nil {
		return err
	}
	return writeJSON(w, body)
}

// writeJSON writes an encoded JSON answer that no cache may keep.
func writeJSON(w http.ResponseWriter, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(append(body, '\n'))
	return err
}
