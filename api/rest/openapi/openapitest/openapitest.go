// Package openapitest checks, in tests, that answers are what the OpenAPI
// document says: Handler wraps the handler a test serves, records each
// answer and validates it with kin-openapi (openapi3filter.ValidateResponse)
// against the document api/rest/openapi serves. A route the document does
// not describe, a status it does not list, a media type it does not name
// or a JSON body its schema refuses fails the test.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/firma-cloud/firma/api/rest/openapi"
)

// Load parses and validates the document and returns it with a router
// over its paths.
func Load() (*openapi3.T, routers.Router, error) {
	loadOnce.Do(func() { loaded.doc, loaded.router, loaded.err = load() })
	return loaded.doc, loaded.router, loaded.err
}

var (
	loadOnce sync.Once
	loaded   struct {
		doc    *openapi3.T
		router routers.Router
		err    error
	}
)

func load() (*openapi3.T, routers.Router, error) {
	raw, err := openapi.Document()
	if err != nil {
		return nil, nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("openapi: load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("openapi: invalid document: %w", err)
	}
	// Route on paths alone: tests serve on whatever host and port.
	doc.Servers = nil
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("openapi: router: %w", err)
	}
	return doc, r, nil
}

// Handler serves h and validates every answer against the document,
// reporting mismatches on t; given path prefixes, only the answers to
// paths under one of them (a server that also serves the citizen's
// pages, or a test's own handlers). t must outlive the requests (a server
// closed in t's cleanup, or before t ends).
func Handler(t testing.TB, h http.Handler, only ...string) http.Handler {
	_, router, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(only) > 0 && !slices.ContainsFunc(only, func(p string) bool { return strings.HasPrefix(r.URL.Path, p) }) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := Check(router, r, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Errorf("openapi: %s %s answered %d, not as the document says: %v", r.Method, r.URL.Path, rec.Code, err)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// Check validates one answer to r.
func Check(router routers.Router, r *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := router.FindRoute(oneSegment(r))
	// kin-openapi's router makes a new RouteError with the sentinel's
	// reason, so the reason is all there is to tell it by.
	var re *routers.RouteError
	switch {
	case errors.As(err, &re) && re.Reason == routers.ErrMethodNotAllowed.Error() && status == http.StatusMethodNotAllowed:
		// A method the path does not take, refused as such.
		return nil
	case err != nil:
		return fmt.Errorf("no operation describes it: %w", err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(bytes.Clone(body))
	return openapi3filter.ValidateResponse(r.Context(), in)
}

// catchAll are the paths whose last parameter is a {name...} wildcard on
// the mux: its value may hold slashes (OCSP's GET form is base64), which
// an OpenAPI path parameter cannot, so the document names it as one
// segment and the route is found with the slashes escaped.
var catchAll = []string{"/ocsp/"}

func oneSegment(r *http.Request) *http.Request {
	for _, p := range catchAll {
		if rest, ok := strings.CutPrefix(r.URL.Path, p); ok && strings.Contains(rest, "/") {
			c := r.Clone(r.Context())
			c.URL.Path, c.URL.RawPath = p+strings.ReplaceAll(rest, "/", "%2F"), ""
			return c
		}
	}
	return r
}
