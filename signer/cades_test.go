package signer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// run runs a tool nobody here wrote and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// cms is just enough of CMS to find the signature value and the token, so
// the test can hand them to openssl on their own.
type cmsContentInfo struct {
	Type    asn1.ObjectIdentifier
	Content asn1.RawValue `asn1:"explicit,tag:0"`
}

type cmsSignedData struct {
	Version     int
	Digests     asn1.RawValue
	Encap       asn1.RawValue
	Certs       asn1.RawValue   `asn1:"optional,tag:0"`
	SignerInfos []cmsSignerInfo `asn1:"set"`
}

type cmsSignerInfo struct {
	Version   int
	SID       asn1.RawValue
	Digest    asn1.RawValue
	Signed    asn1.RawValue `asn1:"optional,tag:0"`
	SigAlg    asn1.RawValue
	Signature []byte
	Unsigned  []cmsAttribute `asn1:"optional,tag:1"`
}

type cmsAttribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// parts returns the signature value and the timestamp token (nil for B-B).
func parts(t *testing.T, der []byte) ([]byte, []byte) {
	t.Helper()
	var ci cmsContentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatalf("parse content info: %v", err)
	}
	var sd cmsSignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatalf("parse signed data: %v", err)
	}
	if len(sd.SignerInfos) != 1 {
		t.Fatalf("%d signer infos, want 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	for _, a := range si.Unsigned {
		if a.Type.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}) {
			return si.Signature, a.Values[0].FullBytes
		}
	}
	return si.Signature, nil
}

// flip returns a copy of b with the byte at i changed.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestCAdESOpenSSL(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	tsaRootPEM := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	doc := []byte("Solicitud de ayuda al alquiler, expediente 2026/000123.\n")
	docPath := filepath.Join(dir, "doc.txt")
	if err := os.WriteFile(docPath, doc, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		keyType    keystore.Type
		pss        bool
		hash       crypto.Hash
		level      signer.Level
		fromDigest bool
	}{
		{"ec-p256 B-T from document", keystore.ECP256, false, crypto.SHA256, signer.LevelT, false},
		{"ec-p256 B-T from digest", keystore.ECP256, false, crypto.SHA256, signer.LevelT, true},
		{"ec-p384 B-B sha384 from digest", keystore.ECP384, false, crypto.SHA384, signer.LevelB, true},
		{"rsa-2048 pkcs1 B-T", keystore.RSA2048, false, crypto.SHA256, signer.LevelT, false},
		{"rsa-2048 pss B-T sha512", keystore.RSA2048, true, crypto.SHA512, signer.LevelT, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, chain := pki.User(t, tc.keyType, "MARIA GARCIA LOPEZ")
			opt := signer.Options{Level: tc.level, Hash: tc.hash, PSS: tc.pss, Timestamper: pki.Timestamper(t)}
			var sig []byte
			var err error
			if tc.fromDigest {
				h := tc.hash.New()
				h.Write(doc)
				sig, err = signer.CAdES(ctx, h.Sum(nil), key, chain, opt)
			} else {
				sig, err = signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, opt)
			}
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			sigPath := filepath.Join(t.TempDir(), "sig.p7s")
			cmsVerify := func(sig, content []byte) (string, error) {
				if err := os.WriteFile(sigPath, sig, 0o600); err != nil {
					t.Fatal(err)
				}
				cpath := filepath.Join(t.TempDir(), "content")
				if err := os.WriteFile(cpath, content, 0o600); err != nil {
					t.Fatal(err)
				}
				return run(t, "openssl", "cms", "-verify", "-binary", "-content", cpath, "-inform", "DER", "-in", sigPath,
					"-CAfile", rootPEM, "-purpose", "any", "-out", os.DevNull)
			}
			if out, err := cmsVerify(sig, doc); err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify rejected the signature: %v\n%s", err, out)
			}
			// The signed attributes CAdES-B-B requires are all there.
			if err := os.WriteFile(sigPath, sig, 0o600); err != nil {
				t.Fatal(err)
			}
			printed, err := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", sigPath)
			if err != nil {
				t.Fatalf("openssl cms -cmsout -print: %v\n%s", err, printed)
			}
			for _, attr := range []string{"contentType", "messageDigest", "signingTime", "id-smime-aa-signingCertificateV2"} {
				if !strings.Contains(printed, attr) {
					t.Errorf("signed attribute %s missing", attr)
				}
			}
			sigValue, token := parts(t, sig)
			if tc.level == signer.LevelB {
				if token != nil {
					t.Fatal("B-B signature carries a timestamp")
				}
			} else {
				if token == nil {
					t.Fatal("B-T signature has no id-aa-signatureTimeStampToken")
				}
				tokPath := filepath.Join(t.TempDir(), "token.der")
				tsVerify := func(token, sigValue []byte) (string, error) {
					if err := os.WriteFile(tokPath, token, 0o600); err != nil {
						t.Fatal(err)
					}
					h := tc.hash.New()
					h.Write(sigValue)
					// openssl ts takes the imprint's hash from the token.
					return run(t, "openssl", "ts", "-verify", "-token_in", "-in", tokPath,
						"-digest", hex.EncodeToString(h.Sum(nil)), "-CAfile", tsaRootPEM)
				}
				if out, err := tsVerify(token, sigValue); err != nil || !strings.Contains(out, "Verification: OK") {
					t.Fatalf("openssl ts -verify rejected the embedded token: %v\n%s", err, out)
				}
				// One byte changed in the token or in the signature value it covers.
				if out, err := tsVerify(flip(token, len(token)-3), sigValue); err == nil {
					t.Errorf("openssl ts -verify accepted a changed token:\n%s", out)
				}
				if out, err := tsVerify(token, flip(sigValue, 5)); err == nil {
					t.Errorf("openssl ts -verify accepted a token over another signature value:\n%s", out)
				}
			}
			// One byte changed in the document or the signature value.
			if out, err := cmsVerify(sig, flip(doc, 3)); err == nil {
				t.Errorf("openssl cms -verify accepted a changed document:\n%s", out)
			}
			i := bytes.Index(sig, sigValue)
			if out, err := cmsVerify(flip(sig, i+len(sigValue)/2), doc); err == nil {
				t.Errorf("openssl cms -verify accepted a changed signature:\n%s", out)
			}
		})
	}
}

func TestCAdESSigningCertificateV2(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "JUAN PEREZ")
	digest := sha256.Sum256([]byte("x"))
	sig, err := signer.CAdES(ctx, digest[:], key, chain, signer.Options{SigningTime: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sig.p7s")
	if err := os.WriteFile(path, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	certHash := sha256.Sum256(chain[0].Raw)
	// openssl's asn1parse of the attribute prints the certHash in upper-case hex.
	if want := strings.ToUpper(hex.EncodeToString(certHash[:])); !strings.Contains(out, "[HEX DUMP]:"+want) {
		t.Errorf("ESSCertIDv2 hash %s not in the signed attributes:\n%s", want, out)
	}
	if !strings.Contains(out, "Nov 25 09:00:00 2026 GMT") && !strings.Contains(out, "261125090000Z") {
		t.Errorf("signing time not the one asked for:\n%s", out)
	}
	// All certificates of the chain are included.
	if n := strings.Count(out, "cert_info:"); n != len(chain) {
		t.Errorf("%d certificates included, want %d", n, len(chain))
	}
}

func TestCAdESErrors(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	_, otherChain := pki.User(t, keystore.ECP256, "OTRA PERSONA")
	good := sha256.Sum256([]byte("doc"))
	failing := signer.TimestamperFunc(func(context.Context, crypto.Hash, []byte) ([]byte, error) {
		return nil, errors.New("connection refused")
	})
	tests := []struct {
		name   string
		digest []byte
		chain  []*x509.Certificate
		opt    signer.Options
		want   error
	}{
		{"short digest", good[:31], chain, signer.Options{}, signer.ErrFormatDigest},
		{"sha384 digest for sha256", make([]byte, 48), chain, signer.Options{}, signer.ErrFormatDigest},
		{"no chain", good[:], nil, signer.Options{}, signer.ErrCertificate},
		{"certificate of another key", good[:], otherChain, signer.Options{}, signer.ErrCertificate},
		{"B-T without timestamper", good[:], chain, signer.Options{Level: signer.LevelT}, signer.ErrTimestamp},
		{"TSA down", good[:], chain, signer.Options{Level: signer.LevelT, Timestamper: failing}, signer.ErrTimestamp},
		{"unknown level", good[:], chain, signer.Options{Level: "B-XL"}, signer.ErrFormat},
		{"B-LT without validation source", good[:], chain, signer.Options{Level: signer.LevelLT, Timestamper: failing}, signer.ErrValidation},
		{"sha1", good[:20], chain, signer.Options{Hash: crypto.SHA1}, signer.ErrHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := signer.CAdES(ctx, tc.digest, key, tc.chain, tc.opt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if sig != nil {
				t.Fatal("a partial signature was returned with the error")
			}
		})
	}
}

func TestSignDocumentFormats(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "LUIS MARTIN")
	pdfDoc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	txt := []byte("hello")
	d := sha256.Sum256(txt)
	tests := []struct {
		name    string
		format  signer.Format
		doc     signer.Document
		wantPDF bool
		wantErr error
	}{
		{"pdf default is pades", "", signer.Document{Type: "application/pdf", Content: pdfDoc}, true, nil},
		{"text default is cades", "", signer.Document{Type: "text/plain", Content: txt}, false, nil},
		{"digest as cades", signer.FormatCAdES, signer.Document{Digest: d[:]}, false, nil},
		{"pades needs the document", signer.FormatPAdES, signer.Document{Digest: d[:]}, false, signer.ErrNeedsDocument},
		{"unknown format", "xmldsig", signer.Document{Content: txt}, false, signer.ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := signer.SignDocument(ctx, tc.format, signer.StandardFormats(), tc.doc, key, chain, signer.Options{}, signer.PDFOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if isPDF := bytes.HasPrefix(out, pdfDoc); isPDF != tc.wantPDF {
				t.Fatalf("output starts with the PDF: %v, want %v", isPDF, tc.wantPDF)
			}
			if !tc.wantPDF {
				sv, _ := parts(t, out)
				if len(sv) == 0 {
					t.Fatal("no signature value")
				}
			}
		})
	}
	if f, err := signer.ParseFormat("pades"); err != nil || f != signer.FormatPAdES {
		t.Errorf("ParseFormat(pades) = %q, %v", f, err)
	}
	custom := signer.DefaultFormats{ByType: map[signer.DocumentType]signer.Format{"application/xml": signer.FormatRaw}}
	if f := custom.For("application/xml"); f != signer.FormatRaw {
		t.Errorf("configured default = %q, want raw", f)
	}
	if f := custom.For("application/pdf"); f != signer.FormatCAdES {
		t.Errorf("fallback = %q, want cades", f)
	}
}
