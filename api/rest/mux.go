package rest

import (
	"net/http"
	"slices"
	"sync"
)

// Router is what a surface registers its routes on: an *http.ServeMux, or
// a *Mux, which also remembers them.
type Router interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Mux is an http.ServeMux that remembers every pattern registered on it,
// so that a test can walk every route firmad serves and a route added
// without a test case fails it.
type Mux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

var _ Router = (*Mux)(nil)

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
}

// HandleFunc registers h for pattern.
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Patterns returns the patterns registered so far, in order.
func (m *Mux) Patterns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.patterns)
}
