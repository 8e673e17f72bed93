package ca_test

import (
	"bytes"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
)

// A citizen certificate does what it is for: a CAdES signature made with
// its HSM key verifies with openssl cms against the root (with openssl's
// default S/MIME signing purpose checks on the key usage) until the
// certificate is revoked, after which a CRL-checking verifier rejects it.
func TestCitizenCertificateSignsCAdES(t *testing.T) {
	tests := []struct {
		name string
		typ  keystore.Type
	}{{"ec-p256", keystore.ECP256}, {"rsa-3072", keystore.RSA3072}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *ca.Config) { c.CitizenKeyType = tc.typ })
			e.init()
			e.advanced("12345678Z", "Juan", "Español")
			c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
			if err != nil {
				t.Fatal(err)
			}
			key, err := e.ks.Signer(e.ctx, c.KeyID)
			if err != nil {
				t.Fatal(err)
			}
			doc := []byte("Solicitud de ayuda 2026/0042\n")
			sig, err := signer.CAdESDocument(e.ctx, bytes.NewReader(doc), key, []*x509.Certificate{c.Cert, e.ca.Issuing()}, signer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			docFile, sigFile := filepath.Join(e.dir, "doc.txt"), filepath.Join(e.dir, "doc.p7s")
			os.WriteFile(docFile, doc, 0o600)
			os.WriteFile(sigFile, sig, 0o600)
			root, _ := e.chain()
			verify := func(extra ...string) (string, error) {
				args := append([]string{"cms", "-verify", "-inform", "DER", "-in", sigFile, "-content", docFile, "-binary",
					"-CAfile", root, "-out", os.DevNull}, extra...)
				out, err := exec.Command("openssl", args...).CombinedOutput()
				return string(out), err
			}
			if out, err := verify(); err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			if _, err := e.ca.Revoke(e.ctx, c.ID, ca.ReasonKeyCompromise); err != nil {
				t.Fatal(err)
			}
			crlPEM := filepath.Join(e.dir, "issuing-crl.pem")
			openssl(t, e.dir, "crl", "-inform", "DER", "-in", e.crl("issuing"), "-out", crlPEM)
			// openssl cms takes CRLs only inside the CAfile bundle.
			rootPEM, _ := os.ReadFile(root)
			crlText, _ := os.ReadFile(crlPEM)
			bundle := filepath.Join(e.dir, "root-and-crl.pem")
			os.WriteFile(bundle, append(rootPEM, crlText...), 0o600)
			if out, err := verify("-crl_check", "-CAfile", bundle); err == nil || !strings.Contains(out, "certificate revoked") {
				t.Fatalf("openssl cms -verify -crl_check after revocation: %v\n%s", err, out)
			}
		})
	}
}
