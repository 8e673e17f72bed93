package openapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/firma-cloud/firma/api/rest"
)

// Paths of the document and of its page.
const (
	DocumentPath = "/openapi.json"
	PagePath     = "/docs/api"
)

// pageCSP lets the page use its own inline style and nothing else.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Register serves the document and its page on mux. It fails when the
// document cannot be built, which is a defect of spec.yaml: firmad then
// refuses to start rather than serve a partial description.
func Register(mux rest.Router) error {
	doc, err := Document()
	if err != nil {
		return err
	}
	page, err := Page()
	if err != nil {
		return err
	}
	mux.HandleFunc("GET "+DocumentPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*") // for API tools run from other origins
		w.Write(doc)
	})
	mux.HandleFunc("GET "+PagePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
	})
	return nil
}

// Page returns the document rendered as one HTML page.
func Page() ([]byte, error) { return page() }

var page = sync.OnceValues(func() ([]byte, error) {
	raw, err := Document()
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, newView(doc)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
})
