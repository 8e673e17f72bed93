package signer_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/asn1"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/verify/testpki"
)

// opensslCMS runs openssl cms -verify on sig, against content when given
// (detached) or the content inside; it returns the output and the
// content openssl wrote out.
func opensslCMS(t *testing.T, rootPEM string, sig, content []byte) (string, []byte, error) {
	t.Helper()
	dir := t.TempDir()
	sigPath, outPath := filepath.Join(dir, "sig.p7s"), filepath.Join(dir, "out")
	if err := os.WriteFile(sigPath, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath, "-CAfile", rootPEM, "-purpose", "any", "-out", outPath}
	if content != nil {
		cpath := filepath.Join(dir, "content")
		if err := os.WriteFile(cpath, content, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-content", cpath)
	}
	out, err := run(t, "openssl", args...)
	got, _ := os.ReadFile(outPath)
	return out, got, err
}

func cmsPrint(t *testing.T, sig []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sig.p7s")
	if err := os.WriteFile(path, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", path)
	if err != nil {
		t.Fatalf("openssl cms -cmsout -print: %v\n%s", err, out)
	}
	return out
}

func TestPolicyCAdESPAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc := []byte("Resolución 2026/000123.\n")
	own, err := signer.ParsePolicy("urn:oid:1.3.6.1.4.1.99999.1.2", "sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "https://example.org/policy.pdf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy *signer.Policy
		oid    string
		uri    string
	}{
		{"AGE", &signer.PolicyAGE, "2.16.724.1.3.1.1.2.1.9", "https://sede.060.gob.es/politica_de_firma_anexo_1.pdf"},
		{"configured", own, "1.3.6.1.4.1.99999.1.2", "https://example.org/policy.pdf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t), Policy: tc.policy}
			sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, opt)
			if err != nil {
				t.Fatal(err)
			}
			if out, _, err := opensslCMS(t, rootPEM, sig, doc); err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			printed := cmsPrint(t, sig)
			for _, want := range []string{"id-smime-aa-ets-sigPolicyId", tc.oid, tc.uri} {
				if !strings.Contains(printed, want) {
					t.Errorf("openssl cms -cmsout -print lacks %q", want)
				}
			}
			// PAdES carries the attribute in its CMS.
			pdf, err := os.ReadFile("testdata/simple.pdf")
			if err != nil {
				t.Fatal(err)
			}
			signed, err := signer.PAdES(ctx, pdf, key, chain, opt, signer.PDFOptions{})
			if err != nil {
				t.Fatal(err)
			}
			oid, _ := asn1.Marshal(tc.policy.OID)
			if !bytes.Contains(signed, []byte(strings.ToUpper(hexOf(oid)))) && !bytes.Contains(signed, []byte(hexOf(oid))) {
				t.Error("the PAdES signature's CMS lacks the policy identifier")
			}
			nss := nssDB(t, rootPEM)
			if st, out := pdfsig(t, nss, signed); len(st) != 1 || st[0] != "Signature is Valid." {
				t.Fatalf("pdfsig: %q\n%s", st, out)
			}
		})
	}
	for _, bad := range [][4]string{
		{"not.an.oid", "sha1", "G7roucf600+f03r/o0bAOQ6WAs0=", ""},
		{"2.16.724.1.3.1.1.2.1.9", "md5", "G7roucf600+f03r/o0bAOQ6WAs0=", ""},
		{"2.16.724.1.3.1.1.2.1.9", "sha256", "G7roucf600+f03r/o0bAOQ6WAs0=", ""}, // a SHA-1 value
		{"2.16.724.1.3.1.1.2.1.9", "sha1", "%%%", ""},
	} {
		if _, err := signer.ParsePolicy(bad[0], bad[1], bad[2], bad[3]); !errors.Is(err, signer.ErrPolicy) {
			t.Errorf("ParsePolicy%q: %v, want ErrPolicy", bad, err)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestCAdESAttached(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	key, chain := pki.User(t, keystore.RSA2048, "MARIA GARCIA LOPEZ")
	doc := []byte("Contrato de arrendamiento, anexo II.\n")
	g := &ltv.Gatherer{HTTP: http.DefaultClient}
	for _, level := range []signer.Level{signer.LevelB, signer.LevelT, signer.LevelLT, signer.LevelLTA} {
		t.Run(string(level), func(t *testing.T) {
			opt := signer.Options{Level: level, Timestamper: pki.Timestamper(t), Validation: g, Attached: true}
			sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, opt)
			if err != nil {
				t.Fatal(err)
			}
			out, content, err := opensslCMS(t, rootPEM, sig, nil)
			if err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify (no -content): %v\n%s", err, out)
			}
			if !bytes.Equal(content, doc) {
				t.Fatalf("openssl wrote out %q, want the document", content)
			}
			// The content inside is signed: a changed byte fails.
			i := bytes.Index(sig, doc)
			if out, _, err := opensslCMS(t, rootPEM, flip(sig, i+2), nil); err == nil {
				t.Errorf("openssl accepted changed content:\n%s", out)
			}
		})
	}
	t.Run("extend B-T to B-LTA", func(t *testing.T) {
		sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t), Attached: true})
		if err != nil {
			t.Fatal(err)
		}
		up, err := signer.ExtendCAdES(ctx, sig, nil, signer.Options{Level: signer.LevelLTA, Timestamper: pki.Timestamper(t), Validation: g})
		if err != nil {
			t.Fatal(err)
		}
		if out, content, err := opensslCMS(t, rootPEM, up, nil); err != nil || !bytes.Equal(content, doc) {
			t.Fatalf("openssl cms -verify: %v\n%s", err, out)
		}
		if !strings.Contains(cmsPrint(t, up), "0.4.0.19122.1.5") {
			t.Error("no ats-hash-index-v3 after the upgrade")
		}
		if _, err := signer.ExtendCAdES(ctx, sig, make([]byte, 32), signer.Options{Level: signer.LevelLT, Timestamper: pki.Timestamper(t), Validation: g}); !errors.Is(err, signer.ErrFormatDigest) {
			t.Errorf("a digest not of the content inside: %v, want ErrFormatDigest", err)
		}
	})
	if _, err := signer.CAdES(ctx, make([]byte, 32), key, chain, signer.Options{Attached: true}); !errors.Is(err, signer.ErrNeedsDocument) {
		t.Errorf("attached from a digest: %v, want ErrNeedsDocument", err)
	}
}

// signerInfos counts the SignerInfos of a CMS.
func signerInfos(t *testing.T, der []byte) int {
	t.Helper()
	var ci cmsContentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	var sd struct {
		Version     int
		Digests     asn1.RawValue
		Encap       asn1.RawValue
		Certs       asn1.RawValue   `asn1:"optional,tag:0"`
		CRLs        asn1.RawValue   `asn1:"optional,tag:1"`
		SignerInfos []asn1.RawValue `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	return len(sd.SignerInfos)
}

func TestCoSignCAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	k1, c1 := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	k2, c2 := pki.User(t, keystore.RSA2048, "JOSE MUÑOZ PEREZ")
	k3, c3 := pki.User(t, keystore.ECP384, "ANA RUIZ SANZ")
	doc := []byte("Acta de la sesión del 3 de marzo.\n")
	g := &ltv.Gatherer{HTTP: http.DefaultClient}
	for _, tc := range []struct {
		name     string
		attached bool
		level    signer.Level
		hash     crypto.Hash
	}{
		{"detached B-T", false, signer.LevelT, crypto.SHA256},
		{"detached B-LTA sha384 cosigner", false, signer.LevelLTA, crypto.SHA384},
		{"attached B-B", true, signer.LevelB, crypto.SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), k1, c1, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t), Attached: tc.attached})
			if err != nil {
				t.Fatal(err)
			}
			content := doc
			if tc.attached {
				content = nil // inside the signature
			}
			opt := signer.Options{Level: tc.level, Hash: tc.hash, Timestamper: pki.Timestamper(t), Validation: g}
			second, err := signer.CoSign(ctx, first, content, nil, k2, c2, opt)
			if err != nil {
				t.Fatal(err)
			}
			third, err := signer.CoSign(ctx, second, content, nil, k3, c3, signer.Options{Policy: &signer.PolicyAGE})
			if err != nil {
				t.Fatal(err)
			}
			if n := signerInfos(t, third); n != 3 {
				t.Fatalf("%d signer infos, want 3", n)
			}
			// openssl cms -verify checks every SignerInfo.
			out, got, err := opensslCMS(t, rootPEM, third, content)
			if err != nil || !strings.Contains(out, "Verification successful") || !bytes.Equal(got, doc) {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			// The first signature is kept byte for byte inside.
			v1, _ := parts(t, first)
			if !bytes.Contains(third, v1) {
				t.Error("the first signature value is gone")
			}
			if !tc.attached {
				if out, _, err := opensslCMS(t, rootPEM, third, flip(doc, 4)); err == nil {
					t.Errorf("openssl accepted another document:\n%s", out)
				}
			}
		})
	}
	t.Run("another document is refused", func(t *testing.T) {
		first, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), k1, c1, signer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.CoSign(ctx, first, []byte("otro"), nil, k2, c2, signer.Options{}); !errors.Is(err, signer.ErrCoSign) {
			t.Errorf("cosign over another document: %v, want ErrCoSign", err)
		}
		if _, err := signer.CoSign(ctx, []byte("not cms"), doc, nil, k2, c2, signer.Options{}); !errors.Is(err, signer.ErrCoSign) {
			t.Errorf("cosign of garbage: %v, want ErrCoSign", err)
		}
		d := sha256Of(doc)
		if _, err := signer.CoSign(ctx, first, nil, d, k2, c2, signer.Options{}); err != nil {
			t.Errorf("cosign from the digest: %v", err)
		}
	})
}

func TestCounterSignCAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	k1, c1 := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	k2, c2 := pki.User(t, keystore.ECP256, "JOSE MUÑOZ PEREZ")
	doc := []byte("Informe favorable.\n")
	first, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), k1, c1, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := signer.CounterSign(ctx, first, k2, c2, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n := signerInfos(t, cs); n != 1 {
		t.Fatalf("%d signer infos, want 1 (the countersignature is inside it)", n)
	}
	// The countersigned signature still verifies; the countersignature
	// itself is checked by firma's verifier (package verify).
	if out, _, err := opensslCMS(t, rootPEM, cs, doc); err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	printed := cmsPrint(t, cs)
	if !strings.Contains(printed, "pkcs9_countersignature") && !strings.Contains(printed, "countersignature") {
		t.Errorf("no countersignature attribute:\n%s", printed)
	}
	if !bytes.Contains(cs, c2[0].Raw) {
		t.Error("the countersigner's certificate is not in the SignedData")
	}
}

// A PDF is co-signed by signing it again: another signature field by
// incremental update, every earlier signature (and document timestamp)
// staying valid for pdfsig.
func TestCoSignPAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	k1, c1 := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	k2, c2 := pki.User(t, keystore.RSA2048, "JOSE MUNOZ PEREZ")
	pdf, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	g := &ltv.Gatherer{HTTP: http.DefaultClient}
	// B-LT: this poppler cannot check a B-LTA's document timestamp
	// ("Unimplemented Feature"), TestPAdESLongTerm checks it with openssl.
	first, err := signer.PAdES(ctx, pdf, k1, c1, signer.Options{Level: signer.LevelLT, Timestamper: pki.Timestamper(t), Validation: g}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := signer.PAdES(ctx, first, k2, c2, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t), Policy: &signer.PolicyAGE}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(second, first) {
		t.Fatal("co-signing changed the signed PDF's bytes")
	}
	st, out := pdfsig(t, nss, second)
	if len(st) != 2 {
		t.Fatalf("pdfsig: %d signatures, want 2\n%s", len(st), out)
	}
	for i, s := range st {
		if s != "Signature is Valid." {
			t.Errorf("pdfsig signature %d: %q\n%s", i+1, s, out)
		}
	}
	if out, err := qpdfCheck(t, second); err != nil || !strings.Contains(out, "No syntax or stream encoding errors") {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
}
