package v1http

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/limit"
)

// TestVerifyLimits checks each bound refuses before the body is read or a
// verifier is asked (the service is nil: reaching it would panic), with
// the problem document and Retry-After.
func TestVerifyLimits(t *testing.T) {
	held := limit.NewGate(100, 10*time.Millisecond)
	release, err := held.Acquire(t.Context(), 100) // the server is full
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	busyClient := limit.NewConcurrent(1)
	leave, _ := busyClient.Enter("192.0.2.1")
	defer leave()
	spent := limit.NewClients(1.0/60, 1, 10, time.Minute)
	spent.Allow("192.0.2.1")

	tests := []struct {
		name   string
		lim    VerifyLimits
		status int
		code   string
	}{
		{"rate", VerifyLimits{Rate: spent}, http.StatusTooManyRequests, limit.CodeRateLimited},
		{"in flight for this client", VerifyLimits{PerClient: busyClient}, http.StatusTooManyRequests, limit.CodeRateLimited},
		{"no room for the body", VerifyLimits{Bytes: held}, http.StatusServiceUnavailable, limit.CodeBusy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			RegisterVerifyLimited(mux, nil, tt.lim)
			r := httptest.NewRequest(http.MethodPost, "/v1/verify", strings.NewReader("%PDF-1.7"))
			r.RemoteAddr = "192.0.2.1:4000"
			r.Header.Set("Content-Type", "application/pdf")
			w := httptest.NewRecorder()
			openapitest.Handler(t, mux).ServeHTTP(w, r)
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if w.Code != tt.status || p.Status != tt.status || p.Code != tt.code || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %+v", w.Code, p)
			}
			if n, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || n < 1 {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
		})
	}
}

// TestVerifyBytesBound sends more bodies at once than the gate holds: all
// are served in turn (none refused, as each waits its turn within the
// wait) and every one gives its bytes back.
func TestVerifyBytesBound(t *testing.T) {
	const size, body = 1 << 10, 600
	gate := limit.NewGate(size, 5*time.Second)
	mux := http.NewServeMux()
	RegisterVerifyLimited(mux, nil, VerifyLimits{Bytes: gate})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not JSON: refused after the body was read, before any
			// verifier is asked.
			r := httptest.NewRequest(http.MethodPost, "/v1/verify", strings.NewReader(strings.Repeat("x", body)))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			openapitest.Handler(t, mux).ServeHTTP(w, r)
			if w.Code != http.StatusBadRequest {
				t.Errorf("status %d: %s", w.Code, w.Body)
			}
		}()
	}
	wg.Wait()
	// Every request gave its bytes back.
	r, err := gate.Acquire(t.Context(), size)
	if err != nil {
		t.Fatalf("bytes not given back: %v", err)
	}
	r()
}

// TestVerifyContentTypeFirst checks a media type that is not JSON or PDF
// (parsed, so application/jsonpwned is not JSON) is refused before the
// body takes room: the gate is full, yet the answer is the 400.
func TestVerifyContentTypeFirst(t *testing.T) {
	full := limit.NewGate(1, time.Millisecond)
	release, _ := full.Acquire(t.Context(), 1)
	defer release()
	mux := http.NewServeMux()
	RegisterVerifyLimited(mux, nil, VerifyLimits{Bytes: full})
	for _, ct := range []string{"application/jsonpwned", "application/pdf;;", "text/plain"} {
		r := httptest.NewRequest(http.MethodPost, "/v1/verify", strings.NewReader("{}"))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		openapitest.Handler(t, mux).ServeHTTP(w, r)
		var p Problem
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != http.StatusBadRequest || p.Field != "Content-Type" {
			t.Errorf("%s: %d %+v", ct, w.Code, p)
		}
	}
}
