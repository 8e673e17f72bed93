package firehttp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/fire"
)

func selfSigned(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app"}, NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// The proxy header is believed only from loopback, in the forms proxies
// write it; an expired certificate is refused as FIRe does.
func TestClientCertHeader(t *testing.T) {
	der := selfSigned(t, time.Now().Add(time.Hour))
	old := selfSigned(t, time.Now().Add(-time.Hour))
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	h := &Handler{opt: Options{CertHeader: "X-Client-Cert"}}
	for _, tc := range []struct {
		name, remote, header string
		want                 string // error code, "" for der
	}{
		{"pem from loopback", "127.0.0.1:5000", p, ""},
		{"pem with tabs (Apache)", "[::1]:5000", strings.ReplaceAll(p, "\n", "\t"), ""},
		{"escaped pem (nginx)", "127.0.0.1:5000", url.PathEscape(p), ""},
		{"base64 der", "127.0.0.1:5000", base64.StdEncoding.EncodeToString(der), ""},
		{"not from loopback", "192.0.2.1:5000", p, "no_client_certificate"},
		{"no header", "127.0.0.1:5000", "", "no_client_certificate"},
		{"garbage", "127.0.0.1:5000", "not a certificate", "bad_client_certificate"},
		{"expired", "127.0.0.1:5000", base64.StdEncoding.EncodeToString(old), fire.ErrUnknownApp.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/fire-signature/fireService", nil)
			r.RemoteAddr = tc.remote
			if tc.header != "" {
				r.Header.Set("X-Client-Cert", tc.header)
			}
			got, err := h.clientCert(r)
			var e *errs.Error
			switch {
			case tc.want == "" && (err != nil || !bytes.Equal(got, der)):
				t.Fatalf("%v", err)
			case tc.want != "" && (!errors.As(err, &e) || e.Code != tc.want):
				t.Fatalf("%v, want %s", err, tc.want)
			}
		})
	}
	// Off by default: the header is never read.
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Client-Cert", p)
	if _, err := (&Handler{}).clientCert(r); err == nil {
		t.Fatal("header read with cert_header unset")
	}
}
