package tsa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"path/filepath"
	"strings"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// TestCertificateKeyIdentifiers checks the TSA certificate carries the
// Subject Key Identifier (RFC 5280 4.2.1.2 method 1) and the issuer's key
// identifier, as openssl reads them, and that zlint's RFC 5280 lints about
// key identifiers pass.
func TestCertificateKeyIdentifiers(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := IssueCertificate(p.issuing, p.issuingKey, key.Public(), CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pubBits := elliptic.Marshal(elliptic.P256(), key.X, key.Y) //nolint:staticcheck // the raw point is the key bits
	want := sha1.Sum(pubBits)
	if !bytes.Equal(cert.SubjectKeyId, want[:]) {
		t.Fatalf("SubjectKeyId %x, want SHA-1 of the key bits %x", cert.SubjectKeyId, want)
	}
	if len(p.issuing.SubjectKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, p.issuing.SubjectKeyId) {
		t.Fatalf("AuthorityKeyId %x, issuer's SKI %x", cert.AuthorityKeyId, p.issuing.SubjectKeyId)
	}
	f := writePEM(t, filepath.Join(t.TempDir(), "tsa.pem"), cert)
	out, err := run(t, "openssl", "x509", "-in", f, "-noout", "-ext", "subjectKeyIdentifier,authorityKeyIdentifier")
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	colon := func(b []byte) string {
		var s []string
		for _, c := range b {
			s = append(s, strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
		return strings.Join(s, ":")
	}
	for _, w := range []string{"X509v3 Subject Key Identifier", colon(cert.SubjectKeyId), "X509v3 Authority Key Identifier", colon(cert.AuthorityKeyId)} {
		if !strings.Contains(out, w) {
			t.Errorf("openssl x509: %q missing in\n%s", w, out)
		}
	}

	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeNames: []string{
		"w_ext_subject_key_identifier_missing_sub_cert", "e_ext_subject_key_identifier_critical",
		"e_ext_authority_key_identifier_no_key_identifier",
	}})
	if err != nil {
		t.Fatal(err)
	}
	zc, err := zx509.ParseCertificate(cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	res := zlint.LintCertificateEx(zc, reg)
	if len(res.Results) == 0 {
		t.Fatal("zlint ran no lint")
	}
	for name, r := range res.Results {
		if r.Status != lint.Pass {
			t.Errorf("zlint %s: %s %s", name, r.Status, r.Details)
		}
	}
}
