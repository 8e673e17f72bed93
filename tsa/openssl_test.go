package tsa

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/digitorus/pkcs7"
)

// opensslTSA is a TSA nobody here wrote: openssl ts -reply, with a
// software key certified by p, behind an HTTP handler.
func opensslTSA(t testing.TB, p *pki, essAlg string) http.Handler {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := IssueCertificate(p.issuing, p.issuingKey, key.Public(), CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tsa.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	writePEM(t, filepath.Join(dir, "tsa.pem"), cert)
	writePEM(t, filepath.Join(dir, "chain.pem"), p.issuing)
	os.WriteFile(filepath.Join(dir, "serial"), []byte("01\n"), 0o600)
	cnf, err := filepath.Abs("testdata/openssl-tsa.cnf")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // one openssl at a time: it does not lock its serial file
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		q, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		qf, rf := filepath.Join(dir, "q.tsq"), filepath.Join(dir, "r.tsr")
		os.WriteFile(qf, q, 0o600)
		cmd := exec.Command("openssl", "ts", "-reply", "-config", cnf, "-queryfile", qf, "-out", rf)
		cmd.Env = append(os.Environ(), "TSA_DIR="+dir, "TSA_SERIAL="+filepath.Join(dir, "serial"), "TSA_ESS_ALG="+essAlg)
		if out, err := cmd.CombinedOutput(); err != nil {
			http.Error(w, string(out), http.StatusInternalServerError)
			return
		}
		reply, err := os.ReadFile(rf)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ReplyContentType)
		w.Write(reply)
	})
}

// TestClientAgainstOpenSSL checks the client accepts tokens from openssl's
// TSA, with ESS signingCertificate (SHA-1) and signingCertificateV2, and
// still refuses them under a root it was not given.
func TestClientAgainstOpenSSL(t *testing.T) {
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Other")
	tests := []struct {
		ess   string
		roots *x509.CertPool
		want  error
	}{
		{"sha1", p.roots(), nil},
		{"sha256", p.roots(), nil},
		{"sha256", other.roots(), ErrUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.ess, func(t *testing.T) {
			c, err := NewClient(ClientConfig{URLs: []string{serve(t, opensslTSA(t, p, tc.ess))}, Roots: tc.roots, Policy: testPolicy, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA512} {
				d := h.New()
				d.Write([]byte("documento"))
				tok, err := c.Timestamp(context.Background(), h, d.Sum(nil))
				if tc.want != nil {
					if !errors.Is(err, tc.want) || !errors.Is(err, ErrBadReply) {
						t.Fatalf("%v: error %v, want %v", h, err, tc.want)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%v: %v", h, err)
				}
				if tok.Hash != h || tok.Cert.Subject.CommonName != "Firma Time-Stamping Authority" || len(tok.Chain) != 3 {
					t.Fatalf("%v: token %+v", h, tok)
				}
				// The ESS attribute is the one asked of openssl, so both
				// of checkSigningCert's paths ran.
				p7, err := pkcs7.Parse(tok.DER)
				if err != nil {
					t.Fatal(err)
				}
				var v1 signingCertificate
				var v2 signingCertificateV2
				hasV1 := p7.UnmarshalSignedAttribute(oidSigningCertificate, &v1) == nil
				hasV2 := p7.UnmarshalSignedAttribute(oidSigningCertV2, &v2) == nil
				if hasV1 != (tc.ess == "sha1") || hasV2 != (tc.ess == "sha256") {
					t.Fatalf("ESS attributes: v1 %v, v2 %v for %s", hasV1, hasV2, tc.ess)
				}
			}
		})
	}
}
