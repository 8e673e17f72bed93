package xades_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/xades"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/tsa"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// Known gaps of xadesjs 2.6.8 (over xmldsigjs 2.8.8), for which those
// cases are checked by xmlsec1 alone.
const (
	noPI     = "xadesjs canonicalises only the root element of a same-document reference, leaving out processing instructions around it, which C14N keeps"
	noC14N11 = "xadesjs has no C14N 1.1"
	// noATS: xadesjs knows the XAdES 1.3.2 elements only; EN 319 132-1
	// B-LTA's archive timestamp is xadesv141:ArchiveTimeStamp, which its
	// UnsignedSignatureProperties reader refuses as "Malformed element".
	noATS    = "xadesjs has no xadesv141:ArchiveTimeStamp"
	noXMLLng = "xadesjs leaves the inherited xml:lang out of the inclusive C14N of a subtree (SignedProperties), which C14N 1.0 section 2.4 puts in"
)

// withPI has what C14N keeps around the root element (a processing
// instruction) and what it drops (the comment, in a reference); plain
// has the same without the processing instruction.
const withPI = `<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="solicitud.xsl"?>
` + plain

const plain = `<sol:Solicitud xmlns:sol="urn:example:solicitud" xmlns:unused="urn:example:unused" xml:lang="es">
  <!-- comentario -->
  <sol:Expediente id="exp">2026/000123</sol:Expediente>
  <sol:Solicitante nif="12345678Z">MARÍA GARCÍA LÓPEZ &amp; otros</sol:Solicitante>
  <sol:Importe moneda="EUR">1500.00</sol:Importe>
  <Nota xmlns="urn:example:nota" a="1" b="2">Texto con &lt;marcas&gt;   y espacios	tab</Nota>
  <sol:Vacio/>
</sol:Solicitud>
`

// tool runs a program nobody here wrote in dir and returns its output.
func tool(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// xadesjsDir is the npm project of the xadesjs check, installed by make
// deps-test.
func xadesjsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata/xadesjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "xadesjs")); err != nil {
		t.Fatalf("xadesjs is not installed (make deps-test runs npm ci in %s): %v", dir, err)
	}
	return dir
}

type jsReport struct {
	Verified             bool   `json:"verified"`
	SigningTime          string `json:"signingTime"`
	SigningCertificateV2 []struct {
		Digest string `json:"digest"`
	} `json:"signingCertificateV2"`
	DataObjectFormats []struct {
		ObjectReference string `json:"objectReference"`
		MimeType        string `json:"mimeType"`
	} `json:"dataObjectFormats"`
	Policy *struct {
		Identifier string `json:"identifier"`
		Digest     string `json:"digest"`
	} `json:"policy"`
	SignatureTimeStamps int `json:"signatureTimeStamps"`
}

// outside runs xmlsec1 (unless skipXMLSec) and xadesjs on a signature;
// it returns nil only when every tool accepted it.
func outside(t *testing.T, signed, content []byte, name, rootPEM string, skipXMLSec, skipJS bool) (*jsReport, error) {
	t.Helper()
	dir := t.TempDir()
	sigPath := filepath.Join(dir, "signed.xml")
	if err := os.WriteFile(sigPath, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	var detachedPath string
	if content != nil {
		detachedPath = filepath.Join(dir, name)
		if err := os.WriteFile(detachedPath, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !skipXMLSec {
		// xmlsec1 resolves a detached reference as a file relative to its
		// working directory; the Id of SignedProperties is declared for it
		// since no DTD does.
		out, err := tool(t, dir, "xmlsec1", "--verify", "--trusted-pem", rootPEM, "--enabled-reference-uris", "empty,same-doc,local,remote",
			"--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
			"--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:Object", "signed.xml")
		if err != nil || !strings.Contains(out, "OK") {
			return nil, errors.New("xmlsec1: " + out)
		}
	}
	if skipJS {
		return nil, nil
	}
	args := []string{filepath.Join(xadesjsDir(t), "check.js"), sigPath}
	if detachedPath != "" {
		args = append(args, detachedPath)
	}
	out, err := tool(t, dir, "node", args...)
	if err != nil {
		return nil, errors.New("xadesjs: " + out)
	}
	var r jsReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("xadesjs check printed %q: %v", out, err)
	}
	return &r, nil
}

// verifyMu serialises token verification across parallel subtests:
// github.com/digitorus/pkcs7's BER decoder writes a package-level counter
// (encodeIndent in ber.go), a data race when two tokens are parsed at once.
var verifyMu sync.Mutex

// locked serialises a timestamper's calls on verifyMu, since the tsa
// client parses (and so verifies) every token it receives.
func locked(ts xades.Timestamper) xades.Timestamper {
	return signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
		verifyMu.Lock()
		defer verifyMu.Unlock()
		return ts.Timestamp(ctx, h, d)
	})
}

func TestXAdESOutsideTools(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert, pki.Issuing.Cert)
	tsaRootPEM := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	ts := locked(pki.Timestamper(t))
	binary := []byte("%PDF-1.7 not really, just bytes \x00\x01\x02 for a detached signature\n")
	at := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)

	tests := []struct {
		name      string
		keyType   keystore.Type
		pss       bool
		hash      crypto.Hash
		level     xades.Level
		packaging xades.Packaging
		c14n      string
		doc       []byte
		skipJS    string // why xadesjs cannot check this one
	}{
		{"ec-p256 enveloped B-T exc-c14n", keystore.ECP256, false, crypto.SHA256, xades.LevelT, xades.Enveloped, "", []byte(plain), ""},
		{"ec-p256 enveloped B-B, PI outside the root", keystore.ECP256, false, crypto.SHA256, xades.LevelB, xades.Enveloped, "", []byte(withPI), noPI},
		{"ec-p384 enveloped B-B c14n 1.0 sha384", keystore.ECP384, false, crypto.SHA384, xades.LevelB, xades.Enveloped, xades.C14N10, []byte(strings.Replace(plain, ` xml:lang="es"`, "", 1)), ""},
		{"ec-p256 enveloped B-B c14n 1.0, inherited xml:lang", keystore.ECP256, false, crypto.SHA256, xades.LevelB, xades.Enveloped, xades.C14N10, []byte(plain), noXMLLng},
		{"rsa pkcs1 enveloping xml B-T c14n 1.1", keystore.RSA2048, false, crypto.SHA256, xades.LevelT, xades.Enveloping, xades.C14N11, []byte(plain), noC14N11},
		{"rsa pkcs1 enveloping xml B-T exc-c14n", keystore.RSA2048, false, crypto.SHA256, xades.LevelT, xades.Enveloping, "", []byte(plain), ""},
		{"rsa pkcs1 enveloping binary B-B sha512", keystore.RSA2048, false, crypto.SHA512, xades.LevelB, xades.Enveloping, "", binary, ""},
		{"ec-p256 detached B-T", keystore.ECP256, false, crypto.SHA256, xades.LevelT, xades.Detached, "", binary, ""},
		{"rsa pss enveloped B-T", keystore.RSA2048, true, crypto.SHA256, xades.LevelT, xades.Enveloped, "", []byte(plain), ""},
		{"ec-p256 enveloped B-B, empty-element root, default namespace", keystore.ECP256, false, crypto.SHA256, xades.LevelB, xades.Enveloped, xades.C14N10, []byte(`<Solicitud xmlns="urn:example:solicitud" n="1"/>` + "\n"), ""},
		{"ec-p256 enveloped EPES (FacturaE policy 3.1) B-T", keystore.ECP256, false, crypto.SHA256, xades.LevelT, xades.Enveloped, "", []byte(plain), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, chain := pki.User(t, tc.keyType, "MARIA GARCIA LOPEZ")
			opt := xades.Options{Level: tc.level, Packaging: tc.packaging, Hash: tc.hash, PSS: tc.pss, SigningTime: at,
				Timestamper: ts, Canonicalization: tc.c14n, Name: "solicitud.pdf"}
			if strings.Contains(tc.name, "EPES") {
				opt.Policy = &xades.PolicyFacturae31
			}
			signed, err := xades.Sign(ctx, tc.doc, key, chain, opt)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			// Enveloped: the document's own bytes are kept, the signature
			// only inserted before the root's end tag.
			if end := bytes.LastIndex(tc.doc, []byte("</")); tc.packaging == xades.Enveloped && end > 0 &&
				(!bytes.HasPrefix(signed, tc.doc[:end]) || !bytes.HasSuffix(signed, tc.doc[end:])) {
				t.Errorf("the document's bytes were not kept around the signature:\n%s", signed)
			}
			var content []byte
			if tc.packaging == xades.Detached {
				content = tc.doc
			}
			resolve := func(uri string) ([]byte, bool) { return content, uri == "solicitud.pdf" && content != nil }

			// firma's own verifier.
			vs, err := xades.Verify(signed, resolve, xades.Limits{})
			if err != nil || len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("verify: %v %+v", err, vs)
			}
			v := vs[0]
			if !v.Cert.Equal(chain[0]) || !v.SigningTime.Equal(at) || v.Level() != tc.level || v.Packaging != tc.packaging || v.Hash != tc.hash {
				t.Errorf("verified %+v", v)
			}

			// xmlsec1 (no RSASSA-PSS in Debian's 1.2.37) and xadesjs.
			rep, err := outside(t, signed, content, "solicitud.pdf", rootPEM, tc.pss, tc.skipJS != "")
			if err != nil {
				t.Fatalf("an outside tool rejected the signature: %v", err)
			}
			if rep == nil {
				t.Logf("xadesjs not run: %s", tc.skipJS)
				return
			}
			certDigest := tc.hash.New()
			certDigest.Write(chain[0].Raw)
			if len(rep.SigningCertificateV2) != 1 || rep.SigningCertificateV2[0].Digest != base64.StdEncoding.EncodeToString(certDigest.Sum(nil)) {
				t.Errorf("xadesjs read SigningCertificateV2 %+v", rep.SigningCertificateV2)
			}
			if rep.SigningTime != "2026-12-07T10:30:00.000Z" {
				t.Errorf("xadesjs read SigningTime %q", rep.SigningTime)
			}
			if len(rep.DataObjectFormats) != 1 || rep.DataObjectFormats[0].MimeType != v.MimeType || v.MimeType == "" {
				t.Errorf("xadesjs read DataObjectFormat %+v, firma %q", rep.DataObjectFormats, v.MimeType)
			}
			if want := map[xades.Level]int{xades.LevelB: 0, xades.LevelT: 1}[tc.level]; rep.SignatureTimeStamps != want {
				t.Errorf("xadesjs saw %d SignatureTimeStamps, want %d", rep.SignatureTimeStamps, want)
			}

			if opt.Policy != nil {
				want := base64.StdEncoding.EncodeToString(xades.PolicyFacturae31.Digest)
				if rep.Policy == nil || rep.Policy.Identifier != xades.PolicyFacturae31.Identifier || rep.Policy.Digest != want {
					t.Errorf("xadesjs read the policy %+v", rep.Policy)
				}
				if v.Policy == nil || v.Policy.Identifier != xades.PolicyFacturae31.Identifier || v.Policy.Hash != crypto.SHA1 ||
					!bytes.Equal(v.Policy.Digest, xades.PolicyFacturae31.Digest) {
					t.Errorf("firma read the policy %+v", v.Policy)
				}
			} else if rep.Policy != nil || v.Policy != nil {
				t.Errorf("a policy where none was asked: %+v %+v", rep.Policy, v.Policy)
			}
			if tc.level == xades.LevelT {
				tokPath := filepath.Join(t.TempDir(), "token.der")
				if err := os.WriteFile(tokPath, v.Timestamp, 0o600); err != nil {
					t.Fatal(err)
				}
				tsVerify := func(data []byte) (string, error) {
					d := sha256.Sum256(data)
					return tool(t, ".", "openssl", "ts", "-verify", "-token_in", "-in", tokPath, "-digest", hex.EncodeToString(d[:]), "-CAfile", tsaRootPEM)
				}
				if out, err := tsVerify(v.TimestampData); err != nil || !strings.Contains(out, "Verification: OK") {
					t.Fatalf("openssl ts -verify rejected the SignatureTimeStamp: %v\n%s", err, out)
				}
				if out, err := tsVerify(append(bytes.Clone(v.TimestampData), ' ')); err == nil {
					t.Errorf("openssl ts -verify accepted the token over other data:\n%s", out)
				}
				verifyMu.Lock()
				_, err := tsa.VerifyToken(v.Timestamp, tsa.VerifyOptions{Roots: testpki.Pool(pki.TSARoot.Cert), Data: v.TimestampData})
				verifyMu.Unlock()
				if err != nil {
					t.Errorf("tsa.VerifyToken: %v", err)
				}
			}
		})
	}
}

// TestXAdESTamper changes one byte at a time in the signed XML (in the
// document, in the signed properties, in SignedInfo, in the signature
// value) and in a detached document: firma's verifier, xmlsec1 and
// xadesjs must all refuse each.
func TestXAdESTamper(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	rootPEM := testpki.WritePEM(t, t.TempDir(), "root.pem", pki.Root.Cert, pki.Issuing.Cert)
	key, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	opt := xades.Options{SigningTime: time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)}
	enveloped, err := xades.Sign(ctx, []byte(plain), key, chain, opt)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte("contrato de arrendamiento\n")
	opt.Packaging, opt.Name = xades.Detached, "contrato.txt"
	detached, err := xades.Sign(ctx, doc, key, chain, opt)
	if err != nil {
		t.Fatal(err)
	}
	// at returns the offset of the byte to change: inside text that is
	// covered, and that stays well-formed XML once changed (a letter or
	// digit flipped in its low bit).
	at := func(b []byte, marker string, skip int) int {
		i := bytes.Index(b, []byte(marker))
		if i < 0 {
			t.Fatalf("%q not in the signature", marker)
		}
		return i + skip
	}
	tests := []struct {
		name    string
		signed  []byte
		content []byte
		offset  int // -1: change the detached content
	}{
		{"document text", enveloped, nil, at(enveloped, "2026/000123", 3)},
		{"document attribute", enveloped, nil, at(enveloped, `nif="12345678Z"`, 6)},
		{"signing time", enveloped, nil, at(enveloped, "<xades:SigningTime>", 22)},
		{"mime type", enveloped, nil, at(enveloped, "<xades:MimeType>text", 17)},
		{"signed info digest", enveloped, nil, at(enveloped, "<ds:DigestValue>", 20)},
		{"signature value", enveloped, nil, at(enveloped, "<ds:SignatureValue", 60)},
		{"detached document", detached, doc, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			signed, content := tc.signed, tc.content
			if tc.offset >= 0 {
				signed = bytes.Clone(signed)
				signed[tc.offset] ^= 0x01
			} else {
				content = bytes.Clone(content)
				content[2] ^= 0x01
			}
			resolve := func(uri string) ([]byte, bool) { return content, uri == "contrato.txt" && content != nil }
			vs, err := xades.Verify(signed, resolve, xades.Limits{})
			if err == nil && (len(vs) != 1 || vs[0].Err == nil) {
				t.Error("firma's verifier accepted it")
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "signed.xml"), signed, 0o600); err != nil {
				t.Fatal(err)
			}
			if content != nil {
				if err := os.WriteFile(filepath.Join(dir, "contrato.txt"), content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := tool(t, dir, "xmlsec1", "--verify", "--trusted-pem", rootPEM, "--enabled-reference-uris", "empty,same-doc,local,remote",
				"--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", "signed.xml"); err == nil {
				t.Errorf("xmlsec1 accepted it:\n%s", out)
			}
			args := []string{filepath.Join(xadesjsDir(t), "check.js"), filepath.Join(dir, "signed.xml")}
			if content != nil {
				args = append(args, filepath.Join(dir, "contrato.txt"))
			}
			if out, err := tool(t, dir, "node", args...); err == nil {
				t.Errorf("xadesjs accepted it:\n%s", out)
			}
		})
	}
	// Untouched, all three accept both: the changes above are what broke them.
	for _, c := range []struct {
		signed, content []byte
	}{{enveloped, nil}, {detached, doc}} {
		if _, err := outside(t, c.signed, c.content, "contrato.txt", rootPEM, false, false); err != nil {
			t.Fatalf("untouched signature refused: %v", err)
		}
	}
}
