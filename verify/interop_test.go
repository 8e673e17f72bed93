package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// softSigner is a software key with a certificate from the test PKI, in
// files that openssl and NSS read; tools nobody here wrote sign with it.
type softSigner struct {
	dir, key, cert, chain string
}

func newSoftSigner(t *testing.T, pki *testpki.PKI, rsaKey bool) *softSigner {
	t.Helper()
	var k crypto.Signer
	var err error
	if rsaKey {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	chain := pki.IssueFor(t, k.Public(), "OUTSIDE TOOL SIGNER")
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s := &softSigner{dir: dir, key: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(s.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cert = testpki.WritePEM(t, dir, "cert.pem", chain[0])
	s.chain = testpki.WritePEM(t, dir, "chain.pem", chain[1:]...)
	return s
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Signatures made by openssl cms are judged by their CAdES content.
func TestInteropOpenSSLCMS(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	s := newSoftSigner(t, pki, false)
	doc := filepath.Join(s.dir, "doc.txt")
	content := []byte("Documento firmado con openssl cms.\n")
	if err := os.WriteFile(doc, content, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flags   []string
		verdict verify.Verdict
		ess     verify.Status
	}{
		{"cades", []string{"-cades"}, verify.Valid, verify.Passed},
		{"plain cms without signing-certificate", nil, verify.VerdictIndeterminate, verify.Indeterminate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "sig.p7s")
			args := append([]string{"cms", "-sign", "-binary", "-md", "sha256", "-in", doc, "-signer", s.cert, "-inkey", s.key,
				"-certfile", s.chain, "-outform", "DER", "-out", out}, tc.flags...)
			tool(t, "openssl", args...)
			sig, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			r, err := v.CAdES(ctx, sig, bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			st := statuses(r.Signatures[0])
			if r.Verdict != tc.verdict || st[verify.CheckIntegrity] != verify.Passed || st[verify.CheckSigningCert] != tc.ess ||
				st[verify.CheckChain] != verify.Passed || st[verify.CheckRevocation] != verify.Passed {
				t.Fatalf("verdict %s, checks %+v", r.Verdict, r.Signatures[0].Checks)
			}
			r, err = v.CAdES(ctx, sig, bytes.NewReader(append([]byte("X"), content[1:]...)))
			if err != nil || r.Verdict != verify.Invalid {
				t.Fatalf("changed content: %v %+v", err, r)
			}
		})
	}
	// An attached signature carries its content: none need be given.
	out := filepath.Join(t.TempDir(), "attached.p7s")
	tool(t, "openssl", "cms", "-sign", "-nodetach", "-binary", "-cades", "-md", "sha256", "-in", doc, "-signer", s.cert, "-inkey", s.key,
		"-certfile", s.chain, "-outform", "DER", "-out", out)
	sig, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := v.CAdES(ctx, sig, nil); err != nil || r.Verdict != verify.Valid {
		t.Fatalf("attached signature: %v %+v", err, r)
	}
}

var pdfsigStatus = regexp.MustCompile(`- Signature Validation: (.*)`)

// A PDF signed by poppler (pdfsig -add-signature; poppler 22.12 cannot
// write ETSI.CAdES.detached, so adbe.pkcs7.detached) verifies here, and
// our PAdES signature added after poppler's keeps both valid for pdfsig and
// for this package.
func TestInteropPdfsig(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	// Poppler 22.12 sizes /Contents from a first signature and fails when
	// the real one is longer, which ECDSA's variable-length DER often is:
	// an RSA key has a fixed-length signature.
	s := newSoftSigner(t, pki, true)
	nss := t.TempDir()
	p12 := filepath.Join(s.dir, "signer.p12")
	tool(t, "openssl", "pkcs12", "-export", "-in", s.cert, "-inkey", s.key, "-certfile", s.chain, "-name", "outside-signer",
		"-passout", "pass:interop", "-out", p12)
	tool(t, "certutil", "-N", "-d", "sql:"+nss, "--empty-password")
	tool(t, "pk12util", "-i", p12, "-d", "sql:"+nss, "-W", "interop")
	tool(t, "certutil", "-A", "-d", "sql:"+nss, "-n", "firma-test-root", "-t", "CT,C,C", "-i", testpki.WritePEM(t, s.dir, "root.pem", pki.Root.Cert))

	signedByPoppler := filepath.Join(s.dir, "poppler.pdf")
	tool(t, "pdfsig", "-nssdir", "sql:"+nss, "-add-signature", "-nick", "outside-signer", "-digest", "SHA256",
		"-new-signature-field-name", "PopplerSignature", "-reason", "interop", "../signer/testdata/simple.pdf", signedByPoppler)
	popplerPDF, err := os.ReadFile(signedByPoppler)
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.PDF(ctx, popplerPDF)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Signatures) != 1 || r.Verdict != verify.Valid || r.Signatures[0].Format != verify.FormatPDFPKCS7 {
		t.Fatalf("poppler's signature: %s %s %+v", r.Verdict, r.Signatures[0].Format, r.Signatures[0].Checks)
	}

	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	both, err := signer.PAdES(ctx, popplerPDF, key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err = v.PDF(ctx, both)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Signatures) != 2 || r.Verdict != verify.Valid {
		t.Fatalf("poppler's and ours: %s, %d signatures", r.Verdict, len(r.Signatures))
	}
	path := filepath.Join(t.TempDir(), "both.pdf")
	if err := os.WriteFile(path, both, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("pdfsig", "-nssdir", "sql:"+nss, path).CombinedOutput()
	st := pdfsigStatus.FindAllStringSubmatch(string(out), -1)
	if len(st) != 2 || st[0][1] != "Signature is Valid." || st[1][1] != "Signature is Valid." {
		t.Fatalf("pdfsig on poppler's signature plus ours:\n%s", out)
	}
	if q := tool(t, "qpdf", "--check", path); !strings.Contains(q, "No syntax or stream encoding errors") {
		t.Fatalf("qpdf --check:\n%s", q)
	}
}

// A co-signature: openssl cms -resign adds an outside signer next to ours
// in the same CMS, and each gets its own report.
func TestInteropCoSignature(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	s := newSoftSigner(t, pki, false)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	content := []byte("Convenio entre administraciones, firmado por ambas partes.\n")
	ours, err := signer.CAdESDocument(ctx, bytes.NewReader(content), key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, doc, out := filepath.Join(dir, "ours.p7s"), filepath.Join(dir, "doc.txt"), filepath.Join(dir, "both.p7s")
	if err := os.WriteFile(in, ours, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, content, 0o600); err != nil {
		t.Fatal(err)
	}
	tool(t, "openssl", "cms", "-resign", "-binary", "-inform", "DER", "-in", in, "-content", doc, "-signer", s.cert, "-inkey", s.key,
		"-certfile", s.chain, "-md", "sha256", "-cades", "-outform", "DER", "-out", out)
	both, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// openssl itself accepts both signers.
	tool(t, "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", out, "-content", doc,
		"-CAfile", testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert), "-purpose", "any", "-out", os.DevNull)
	r, err := v.CAdES(ctx, both, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != verify.Valid || len(r.Signatures) != 2 {
		t.Fatalf("verdict %s, %d signatures", r.Verdict, len(r.Signatures))
	}
	signers := map[string]string{}
	for _, sg := range r.Signatures {
		signers[sg.Signer] = sg.Level
	}
	if signers["CN=OUTSIDE TOOL SIGNER,C=ES"] != "B-B" || signers["SERIALNUMBER=IDCES-12345678Z,CN=MARIA GARCIA LOPEZ,C=ES"] != "B-T" {
		t.Fatalf("signers: %v", signers)
	}
	r, err = v.CAdES(ctx, both, bytes.NewReader(append([]byte("X"), content[1:]...)))
	if err != nil || r.Verdict != verify.Invalid || len(r.Signatures) != 2 || r.Signatures[0].Verdict != verify.Invalid || r.Signatures[1].Verdict != verify.Invalid {
		t.Fatalf("changed content: %v %+v", err, r)
	}
}
