package signer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify/testpki"
)

// nssDB makes an NSS database trusting root, so pdfsig can judge the chain.
func nssDB(t *testing.T, rootPEM string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := run(t, "certutil", "-N", "-d", "sql:"+dir, "--empty-password"); err != nil {
		t.Fatalf("certutil -N: %v\n%s", err, out)
	}
	if out, err := run(t, "certutil", "-A", "-d", "sql:"+dir, "-n", "firma-test-root", "-t", "CT,C,C", "-i", rootPEM); err != nil {
		t.Fatalf("certutil -A: %v\n%s", err, out)
	}
	return dir
}

// testPDFs returns the hand-written PDF with a classic xref table, the
// same document rewritten by qpdf with object and xref streams, and as
// cairo (poppler's pdftocairo) writes it.
func testPDFs(t *testing.T) map[string][]byte {
	t.Helper()
	simple, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	xs := filepath.Join(t.TempDir(), "xref-stream.pdf")
	if out, err := run(t, "qpdf", "--object-streams=generate", "testdata/simple.pdf", xs); err != nil {
		t.Fatalf("qpdf --object-streams=generate: %v\n%s", err, out)
	}
	xsb, err := os.ReadFile(xs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(xsb, []byte("/XRef")) {
		t.Fatal("qpdf did not write an xref stream")
	}
	cairo := filepath.Join(t.TempDir(), "cairo.pdf")
	if out, err := run(t, "pdftocairo", "-pdf", "testdata/simple.pdf", cairo); err != nil {
		t.Fatalf("pdftocairo: %v\n%s", err, out)
	}
	cb, err := os.ReadFile(cairo)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"xref table": simple, "xref stream": xsb, "cairo": cb}
}

var sigStatus = regexp.MustCompile(`- Signature Validation: (.*)`)

// pdfsig returns each signature's validation line and certificate line.
func pdfsig(t *testing.T, nss string, pdf []byte) ([]string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signed.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, "pdfsig", "-nssdir", "sql:"+nss, path)
	var st []string
	for _, m := range sigStatus.FindAllStringSubmatch(out, -1) {
		st = append(st, strings.TrimSpace(m[1]))
	}
	return st, out
}

func qpdfCheck(t *testing.T, pdf []byte) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return run(t, "qpdf", "--check", path)
}

func TestPAdESPdfsigQpdf(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	tsaRoot := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	rsaKey, rsaChain := pki.User(t, keystore.RSA2048, "JOSÉ MUÑOZ")

	type variant struct {
		name    string
		level   signer.Level
		visible bool
		rsa     bool
	}
	variants := []variant{
		{"B-T visible", signer.LevelT, true, false},
		{"B-B invisible", signer.LevelB, false, false},
		{"B-T invisible rsa", signer.LevelT, false, true},
	}
	for docName, doc := range testPDFs(t) {
		for _, v := range variants {
			t.Run(docName+"/"+v.name, func(t *testing.T) {
				k, c := key, chain
				if v.rsa {
					k, c = rsaKey, rsaChain
				}
				opt := signer.Options{Level: v.level, Timestamper: pki.Timestamper(t)}
				po := signer.PDFOptions{Visible: v.visible, Reason: "Solicitud", Location: "Madrid"}
				signed, err := signer.PAdES(ctx, doc, k, c, opt, po)
				if err != nil {
					t.Fatalf("PAdES: %v", err)
				}
				if !bytes.HasPrefix(signed, doc) {
					t.Fatal("the original bytes were changed")
				}
				if out, err := qpdfCheck(t, signed); err != nil || !strings.Contains(out, "No syntax or stream encoding errors") {
					t.Fatalf("qpdf --check: %v\n%s", err, out)
				}
				st, out := pdfsig(t, nss, signed)
				if len(st) != 1 || st[0] != "Signature is Valid." {
					t.Fatalf("pdfsig: %q\n%s", st, out)
				}
				for _, want := range []string{"Certificate is Trusted.", "Signature Type: ETSI.CAdES.detached", "Total document signed"} {
					if !strings.Contains(out, want) {
						t.Errorf("pdfsig output lacks %q:\n%s", want, out)
					}
				}
				if v.level == signer.LevelT && !strings.Contains(out, "Signature Timestamp") && !strings.Contains(out, "Signing Time") {
					t.Logf("pdfsig output:\n%s", out)
				}

				// Signed a second time: both signatures stay valid.
				twice, err := signer.PAdES(ctx, signed, k, c, opt, signer.PDFOptions{Visible: !v.visible, Page: 1})
				if err != nil {
					t.Fatalf("second PAdES: %v", err)
				}
				if !bytes.HasPrefix(twice, signed) {
					t.Fatal("the second signature changed the first revision")
				}
				if out, err := qpdfCheck(t, twice); err != nil || !strings.Contains(out, "No syntax or stream encoding errors") {
					t.Fatalf("qpdf --check after two signatures: %v\n%s", err, out)
				}
				st, out = pdfsig(t, nss, twice)
				if len(st) != 2 || st[0] != "Signature is Valid." || st[1] != "Signature is Valid." {
					t.Fatalf("pdfsig after two signatures: %q\n%s", st, out)
				}
				if !strings.Contains(out, "Signature #2") {
					t.Errorf("second signature not listed:\n%s", out)
				}

				// One byte changed in the document or in the CMS.
				i := bytes.Index(doc, []byte("Solicitud de prueba"))
				if i < 0 {
					i = len(doc) / 3 // the xref-stream file compresses the content
				}
				if st, out := pdfsig(t, nss, flip(signed, i)); len(st) == 1 && st[0] == "Signature is Valid." {
					t.Errorf("pdfsig accepts a changed document:\n%s", out)
				}
				// A hex digit of the signature value inside /Contents.
				c0 := bytes.LastIndex(signed, []byte("/Contents <")) + len("/Contents <")
				c1 := c0 + bytes.IndexByte(signed[c0:], '>')
				cms, err := hex.DecodeString(string(signed[c0:c1]))
				if err != nil {
					t.Fatal(err)
				}
				sv, token := parts(t, cms)
				if v.level == signer.LevelT {
					// The embedded signature timestamp, for openssl ts.
					if token == nil {
						t.Fatal("B-T PAdES signature has no signature timestamp")
					}
					d := sha256.Sum256(sv)
					tsVerify := func(tok []byte) (string, error) {
						p := filepath.Join(t.TempDir(), "token.der")
						if err := os.WriteFile(p, tok, 0o600); err != nil {
							t.Fatal(err)
						}
						return run(t, "openssl", "ts", "-verify", "-token_in", "-in", p, "-digest", hex.EncodeToString(d[:]), "-CAfile", tsaRoot)
					}
					if out, err := tsVerify(token); err != nil || !strings.Contains(out, "Verification: OK") {
						t.Fatalf("openssl ts -verify on the PAdES token: %v\n%s", err, out)
					}
					if out, err := tsVerify(flip(token, len(token)-4)); err == nil {
						t.Fatalf("openssl ts -verify accepted a changed PAdES token:\n%s", out)
					}
				}
				at := bytes.Index(signed[c0:c1], []byte(strings.ToLower(hex.EncodeToString(sv)))) + c0 + 10
				if at < c0+10 {
					t.Fatal("signature value not found in /Contents")
				}
				changed := bytes.Clone(signed)
				if changed[at] == 'a' {
					changed[at] = 'b'
				} else {
					changed[at] = 'a'
				}
				if st, out := pdfsig(t, nss, changed); len(st) == 1 && st[0] == "Signature is Valid." {
					t.Errorf("pdfsig accepts a changed signature:\n%s", out)
				}
			})
		}
	}
}

func TestPAdESErrors(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	certified, err := os.ReadFile("testdata/certified-nochanges.pdf")
	if err != nil {
		t.Fatal(err)
	}
	cyclic, err := os.ReadFile("testdata/cyclic-page-tree.pdf")
	if err != nil {
		t.Fatal(err)
	}
	extendsCycle, err := os.ReadFile("testdata/objstm-extends-cycle.pdf")
	if err != nil {
		t.Fatal(err)
	}
	hugeN, err := os.ReadFile("testdata/objstm-huge-n.pdf")
	if err != nil {
		t.Fatal(err)
	}
	extendsCycle1, err := os.ReadFile("testdata/objstm-extends-cycle-n1.pdf")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{}, signer.PDFOptions{FieldName: "Firma"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  []byte
		po   signer.PDFOptions
		want error
		why  string
	}{
		{"not a pdf", []byte("hello, world"), signer.PDFOptions{}, signer.ErrPDF, ""},
		{"truncated", doc[:len(doc)/2], signer.PDFOptions{}, signer.ErrPDF, ""},
		{"empty", nil, signer.PDFOptions{}, signer.ErrPDF, ""},
		{"page out of range", doc, signer.PDFOptions{Page: 7}, signer.ErrPDF, "page 7 of 1"},
		{"field name taken", signed, signer.PDFOptions{FieldName: "Firma"}, signer.ErrPDF, `field "Firma" already exists`},
		{"certified, no changes allowed", certified, signer.PDFOptions{}, signer.ErrPDF, "DocMDP P=1"},
		// github.com/digitorus/pdf loops forever on these three.
		{"page tree with a cycle", cyclic, signer.PDFOptions{}, signer.ErrPDF, "page tree has a cycle"},
		{"object stream extending itself", extendsCycle, signer.PDFOptions{}, signer.ErrPDF, "object stream"},
		{"object stream with 10^15 objects", hugeN, signer.PDFOptions{}, signer.ErrPDF, "object stream"},
		{"object 2 missing, its object stream extending itself", extendsCycle1, signer.PDFOptions{}, signer.ErrPDF, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := signer.PAdES(ctx, tc.doc, key, chain, signer.Options{}, tc.po)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			if out != nil {
				t.Fatal("output returned with an error")
			}
		})
	}
}

// countingSigner counts the uses of a key.
type countingSigner struct {
	crypto.Signer
	n atomic.Int32
}

func (c *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, d, o)
}

// One document is one use of the key: the reserved /Contents is sized
// for the longest signature the key can make (and a timestamp at B-T),
// so PAdES never signs twice; a size given too small is an error after
// that one use, never a second signature.
func TestPAdESOneKeyUse(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		key   keystore.Type
		level signer.Level
		size  int
		want  error
	}{
		{"ecdsa p256 B-B", keystore.ECP256, signer.LevelB, 0, nil},
		{"ecdsa p384 B-T", keystore.ECP384, signer.LevelT, 0, nil},
		{"rsa B-T", keystore.RSA2048, signer.LevelT, 0, nil},
		{"given size too small", keystore.ECP256, signer.LevelT, 100, signer.ErrPDF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, chain := pki.User(t, tc.key, "ANA RUIZ")
			key := &countingSigner{Signer: k}
			signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: tc.level, Timestamper: pki.Timestamper(t)},
				signer.PDFOptions{ContentsSize: tc.size})
			if n := key.n.Load(); n != 1 {
				t.Errorf("key used %d times, want 1", n)
			}
			if tc.want != nil {
				if !errors.Is(err, tc.want) || signed != nil {
					t.Fatalf("err %v, want %v and no file", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st, out := pdfsig(t, nss, signed); len(st) != 1 || st[0] != "Signature is Valid." {
				t.Fatalf("pdfsig: %q\n%s", st, out)
			}
		})
	}
}

func FuzzPAdESInput(f *testing.F) {
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte("%PDF-1.7\n"))
	f.Add(doc[:200])
	pki := testpki.New(f)
	key, chain := pki.User(f, keystore.ECP256, "FUZZ")
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := signer.PAdES(context.Background(), in, key, chain, signer.Options{}, signer.PDFOptions{})
		if err == nil && !bytes.HasPrefix(out, in) {
			t.Fatal("output does not keep the input")
		}
	})
}

// render draws page 1 at 72 dpi in grey with pdftoppm (poppler) and
// returns the width, height and pixels (0 black .. 255 white).
func render(t *testing.T, pdf []byte) (int, int, []byte) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "pdftoppm", "-r", "72", "-gray", "-f", "1", "-l", "1", "-singlefile", in, filepath.Join(dir, "page")); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "page.pgm"))
	if err != nil {
		t.Fatal(err)
	}
	var w, h, maxv int
	var hdr int
	if _, err := fmt.Sscanf(string(b), "P5\n%d %d\n%d\n", &w, &h, &maxv); err != nil {
		t.Fatalf("pgm header: %v", err)
	}
	hdr = len(fmt.Sprintf("P5\n%d %d\n%d\n", w, h, maxv))
	return w, h, b[hdr:]
}

// dark counts pixels darker than mid-grey in the PDF rectangle r (PDF
// units from the bottom left, 1 unit = 1 pixel at 72 dpi).
func dark(w, h int, px []byte, r [4]float64) int {
	n := 0
	for y := int(r[1]); y < int(r[3]); y++ {
		for x := int(r[0]); x < int(r[2]); x++ {
			if row := h - 1 - y; row >= 0 && x < w && px[row*w+x] < 128 {
				n++
			}
		}
	}
	return n
}

// A visible signature draws its box on the page; an invisible one
// changes nothing.
func TestPAdESAppearance(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	box := [4]float64{300, 100, 540, 170}
	w, h, before := render(t, doc)
	if n := dark(w, h, before, box); n != 0 {
		t.Fatalf("the unsigned page already has %d dark pixels in the box", n)
	}
	for _, visible := range []bool{true, false} {
		signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{}, signer.PDFOptions{Visible: visible, Rect: box, Reason: "Conformidad"})
		if err != nil {
			t.Fatal(err)
		}
		w, h, px := render(t, signed)
		n := dark(w, h, px, box)
		if visible && n < 50 {
			t.Errorf("visible signature: %d dark pixels in its box, want its text", n)
		}
		if !visible && n != 0 {
			t.Errorf("invisible signature drew %d dark pixels", n)
		}
		if !bytes.Equal(px[:len(px)/2], before[:len(before)/2]) {
			t.Errorf("visible=%v: the top half of the page changed", visible)
		}
	}
}

// pdfsig asks the certificate's OCSP responder (our test PKI's) and
// refuses a signer revoked before signing.
func TestPAdESRevokedSigner(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	key, chain := pki.User(t, keystore.ECP256, "REVOCADO")
	pki.Revoke(chain[0], time.Now().Add(-time.Minute))
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, out := pdfsig(t, nss, signed)
	if len(st) != 1 || st[0] != "Signature is Valid." {
		t.Fatalf("pdfsig: %q\n%s", st, out)
	}
	if !strings.Contains(out, "Certificate has been Revoked.") {
		t.Fatalf("pdfsig did not see the revocation:\n%s", out)
	}
}

// A document timestamp over a signed PDF: openssl ts -verify accepts the
// token against the bytes of its /ByteRange, the earlier signature stays
// valid for pdfsig, and one changed byte breaks the token.
func TestDocumentTimestamp(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	tsaRoot := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := signer.DocumentTimestamp(ctx, signed, pki.Timestamper(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stamped, signed) {
		t.Fatal("the signed revision changed")
	}
	if out, err := qpdfCheck(t, stamped); err != nil || !strings.Contains(out, "No syntax or stream encoding errors") {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
	st, out := pdfsig(t, nss, stamped)
	if len(st) != 2 || st[0] != "Signature is Valid." || !strings.Contains(out, "Signer Certificate Common Name: Firma Test TSA") {
		t.Fatalf("pdfsig: %q\n%s", st, out)
	}
	if !strings.Contains(out, "/SubFilter") && !bytes.Contains(stamped[len(signed):], []byte("/SubFilter /ETSI.RFC3161")) {
		t.Fatal("no ETSI.RFC3161 sub-filter")
	}

	// The token and the bytes it covers, for openssl.
	tsVerify := func(file []byte) (string, error) {
		c0 := bytes.LastIndex(file, []byte("/Contents <")) + len("/Contents <")
		c1 := c0 + bytes.IndexByte(file[c0:], '>')
		padded, err := hex.DecodeString(string(file[c0:c1]))
		if err != nil {
			t.Fatal(err)
		}
		var raw asn1.RawValue // the token, without the zero padding
		if _, err := asn1.Unmarshal(padded, &raw); err != nil {
			t.Fatal(err)
		}
		tok := raw.FullBytes
		d := t.TempDir()
		data := append(bytes.Clone(file[:c0-1]), file[c1+1:]...)
		if err := os.WriteFile(filepath.Join(d, "data"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "tok"), tok, 0o600); err != nil {
			t.Fatal(err)
		}
		return run(t, "openssl", "ts", "-verify", "-data", filepath.Join(d, "data"), "-in", filepath.Join(d, "tok"), "-token_in", "-CAfile", tsaRoot)
	}
	if out, err := tsVerify(stamped); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	if out, err := tsVerify(flip(stamped, 100)); err == nil {
		t.Fatalf("openssl ts -verify accepted a changed document:\n%s", out)
	}
}

// A form with a text field and a link keeps both: the new signature field
// joins the AcroForm's fields and the page's annotations.
func TestPAdESKeepsFormAndAnnotations(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc, err := os.ReadFile("testdata/form.pdf")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{}, signer.PDFOptions{Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := qpdfCheck(t, signed); err != nil || !strings.Contains(out, "No syntax or stream encoding errors") {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
	if st, out := pdfsig(t, nss, signed); len(st) != 1 || st[0] != "Signature is Valid." {
		t.Fatalf("pdfsig: %q\n%s", st, out)
	}
	// qpdf reads the final revision: the text field, the link and the
	// signature are all there, and the form's defaults too.
	path := filepath.Join(t.TempDir(), "signed.pdf")
	if err := os.WriteFile(path, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	js, err := run(t, "qpdf", "--json", "--json-key=acroform", "--json-key=pages", path)
	if err != nil {
		t.Fatalf("qpdf --json: %v\n%s", err, js)
	}
	for _, want := range []string{`"fullname": "expediente"`, `"fullname": "Signature1"`, `"fieldtype": "/Sig"`, `"fieldtype": "/Tx"`} {
		if !strings.Contains(js, want) {
			t.Errorf("qpdf --json lacks %s:\n%s", want, js)
		}
	}
	if strings.Count(js, `"pageposfrom1": 1`) < 3 {
		t.Errorf("the fields' widgets are not all on page 1:\n%s", js)
	}
	// The page as qpdf reads it keeps the text field's and the link's
	// annotations and adds ours.
	page, err := run(t, "qpdf", "--show-object=3", path)
	if err != nil || !regexp.MustCompile(`/Annots \[ 7 0 R 8 0 R \d+ 0 R \]`).MatchString(page) {
		t.Errorf("page annotations: %v\n%s", err, page)
	}
	if !bytes.Contains(signed[len(doc):], []byte("/DA(/Helv 10 Tf 0 g)")) && !bytes.Contains(signed[len(doc):], []byte("/DA (/Helv 10 Tf 0 g)")) {
		t.Errorf("the AcroForm's /DA was lost:\n%s", signed[len(doc):])
	}
	if !bytes.Contains(signed[len(doc):], []byte("8 0 R")) {
		t.Error("the link annotation was dropped from the page")
	}
}
