package tsahttp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/api/rest/tsahttp"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/tsa"
)

// counter is a serial source in memory: these tests are about HTTP, not
// serial persistence, which tsa's own tests cover on a real store.
type counter struct{ n atomic.Int64 }

func (c *counter) Next(context.Context) (*big.Int, error) { return big.NewInt(c.n.Add(1)), nil }

// newServer is a TSA on software keys under a fresh root.
func newServer(t *testing.T, maxQuery int64, reg prometheus.Registerer) *tsa.Server {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tsahttp test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tsa.IssueCertificate(root, rootKey, key.Public(), tsa.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tsa.NewServer(tsa.ServerConfig{Signer: key, Cert: cert, Chain: []*x509.Certificate{root},
		Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Serials: &counter{}, MaxQueryBytes: maxQuery, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestHTTPErrors checks HTTP misuse gets a problem+json error.
func TestHTTPErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := newServer(t, 512, reg)
	hs := httptest.NewServer(tsahttp.Handler(srv, nil))
	defer hs.Close()
	url := hs.URL
	q := []byte("0\x00") // never read: every case is refused before Respond
	tests := []struct {
		name       string
		method, ct string
		body       []byte
		status     int
	}{
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, tsa.QueryContentType, q, http.StatusMethodNotAllowed},
		{"no content type", http.MethodPost, "", q, http.StatusUnsupportedMediaType},
		{"json", http.MethodPost, "application/json", []byte("{}"), http.StatusUnsupportedMediaType},
		{"too large", http.MethodPost, tsa.QueryContentType, make([]byte, 4096), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, url, strings.NewReader(string(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var pb struct {
				Title  string
				Status int
				Detail string
			}
			if err := json.NewDecoder(resp.Body).Decode(&pb); err != nil || pb.Status != tc.status || pb.Title == "" || pb.Detail == "" {
				t.Fatalf("problem %+v, %v", pb, err)
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
	want := map[string]float64{"method_not_allowed": 2, "unsupported_media_type": 2, "too_large": 1}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "firma_tsa_server_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for result, w := range want {
		if got[result] != w {
			t.Errorf("requests{result=%q} = %v, want %v", result, got[result], w)
		}
	}
	if got["granted"] != 0 {
		t.Errorf("granted = %v", got["granted"])
	}
}

// TestCertificates checks /tsa/certs serves the chain as PEM, and GET only.
func TestCertificates(t *testing.T) {
	srv := newServer(t, 0, nil)
	hs := httptest.NewServer(tsahttp.CertificatesHandler(srv))
	defer hs.Close()
	tests := []struct {
		method string
		status int
		ct     string
	}{
		{http.MethodGet, http.StatusOK, "application/pem-certificate-chain"},
		{http.MethodPost, http.StatusMethodNotAllowed, "application/problem+json"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, hs.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ct {
			t.Errorf("%s: %d %s, want %d %s", tc.method, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.ct)
		}
	}
	if n := strings.Count(string(srv.ChainPEM()), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("chain of %d certificates, want 2", n)
	}
}

// TestRateLimit checks a client over its rate gets 429 with Retry-After
// and a problem document before its query is read, while another client
// is still served.
func TestRateLimit(t *testing.T) {
	srv := newServer(t, 512, nil)
	h := tsahttp.HandlerLimited(srv, nil, limit.NewClients(1.0/60, 2, 100, time.Minute))
	send := func(remote string) *httptest.ResponseRecorder {
		// Not a query: a request let through is answered 200 with a
		// rejection; a limited one is refused before that.
		r := httptest.NewRequest(http.MethodPost, "/tsa", strings.NewReader("0\x00"))
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", tsa.QueryContentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i, want := range []int{200, 200, 429, 429} {
		w := send("192.0.2.1:1000")
		if w.Code != want {
			t.Fatalf("request %d: %d, want %d", i, w.Code, want)
		}
		if want != 429 {
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("429 content type %q", ct)
		}
		if n, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || n < 1 {
			t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
		}
	}
	if w := send("192.0.2.2:1000"); w.Code != 200 {
		t.Fatalf("another client: %d", w.Code)
	}
}
