package transaction_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/transaction"
)

// clientPKI is a CA and two client certificates for portals, made for the
// test: TLS credentials, not signing keys.
func clientPKI(t *testing.T) (*x509.CertPool, tls.Certificate, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Portal client CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	leaf := func(n int64, cn string) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	return pool, leaf(2, "sede.example.es"), leaf(3, "unregistered.example.es")
}

// TestRESTMutualTLSPortal authenticates a portal by its client
// certificate alone, over a real TLS connection.
func TestRESTMutualTLSPortal(t *testing.T) {
	e := newEnv(t, nil)
	pool, registered, stranger := clientPKI(t)
	sum := sha256.Sum256(registered.Certificate[0])
	c, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede mTLS", RedirectURLs: []string{okURL, errURL}, CertSHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(openapitest.Handler(t, portalhttp.NewHandler(e.svc, e.portals, nil, 0)))
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	client := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: x509.NewCertPool()}
		tc.RootCAs.AddCert(srv.Certificate())
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	citizen := e.advanced(12345678)
	ct := e.create(c.Portal, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		status int
	}{
		{"registered certificate", &registered, http.StatusOK},
		{"certificate of no portal", &stranger, http.StatusUnauthorized},
		{"no certificate", nil, http.StatusUnauthorized},
	} {
		resp, err := client(tc.cert).Get(srv.URL + "/api/v1/transactions/" + ct.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
		if tc.status == http.StatusOK && body["transaction_id"] != ct.ID {
			t.Errorf("%s: %v", tc.name, body)
		}
	}
}
