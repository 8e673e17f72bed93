package pkihttp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/limit"
)

// TestOCSPRateLimit checks a client over its rate gets HTTP 429 with
// Retry-After and the OCSP tryLater response, on both request forms,
// before the CA is asked (there is none here: asking would panic).
func TestOCSPRateLimit(t *testing.T) {
	rate := limit.NewClients(1.0/60, 1, 10, time.Minute)
	rate.Allow("192.0.2.1") // its one request is spent
	mux := http.NewServeMux()
	RegisterLimited(mux, nil, nil, rate)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/ocsp", strings.NewReader("\x30\x00")),
		httptest.NewRequest(http.MethodGet, "/ocsp/MAA=", nil),
	} {
		t.Run(r.Method, func(t *testing.T) {
			r.RemoteAddr = "192.0.2.1:5000"
			r.Header.Set("Content-Type", "application/ocsp-request")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
			}
			if n, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || n < 1 {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
			_, err := ocsp.ParseResponse(w.Body.Bytes(), nil)
			var re ocsp.ResponseError
			if !errors.As(err, &re) || re.Status != ocsp.TryLater {
				t.Fatalf("body is not tryLater: %v", err)
			}
		})
	}
}
