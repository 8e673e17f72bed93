package signer_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/internal/pdfobj"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	fverify "github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// dssStreams returns the contents of the DSS's Certs, OCSPs and CRLs and
// the keys of its VRI, read with pdfcpu.
func dssStreams(t *testing.T, pdf []byte) (map[string][][]byte, []string) {
	t.Helper()
	ctx, err := pdfobj.ReadContext(pdf)
	if err != nil {
		t.Fatal(err)
	}
	xt := ctx.XRefTable
	cat, err := xt.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	dss := pdfobj.Dict(xt, cat["DSS"])
	if dss == nil {
		t.Fatal("no /DSS in the catalog")
	}
	out := map[string][][]byte{}
	for _, k := range []string{"Certs", "OCSPs", "CRLs"} {
		for _, o := range pdfobj.Array(xt, dss[k]) {
			sd, _, err := xt.DereferenceStreamDict(o)
			if err != nil || sd == nil {
				t.Fatalf("DSS %s: %v", k, err)
			}
			if err := sd.Decode(); err != nil {
				t.Fatal(err)
			}
			out[k] = append(out[k], sd.Content)
		}
	}
	var keys []string
	for k := range pdfobj.Dict(xt, dss["VRI"]) {
		keys = append(keys, k)
	}
	return out, keys
}

// TestPAdESLongTerm signs a PDF at B-LT (a DSS by incremental update) and
// B-LTA (a document timestamp after it): pdfsig says every signature is
// valid, qpdf --check finds nothing, openssl verifies each OCSP response
// in the DSS, and the VRI names the signature.
// Cost: one test PKI, two signatures, a dozen tool runs.
func TestPAdESLongTerm(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	if out, err := run(t, "certutil", "-A", "-d", "sql:"+nss, "-n", "firma-test-tsa-root", "-t", "CT,C,C", "-i",
		testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)); err != nil {
		t.Fatalf("certutil -A: %v\n%s", err, out)
	}
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	g := &ltv.Gatherer{HTTP: http.DefaultClient}
	for _, tc := range []struct {
		level signer.Level
		sigs  int
	}{{signer.LevelLT, 1}, {signer.LevelLTA, 2}} {
		t.Run(string(tc.level), func(t *testing.T) {
			out, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: tc.level, Timestamper: pki.Timestamper(t), Validation: g.Batch()}, signer.PDFOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, doc) {
				t.Fatal("the original revision changed")
			}
			if o, err := qpdfCheck(t, out); err != nil || !strings.Contains(o, "No syntax or stream encoding errors") {
				t.Fatalf("qpdf --check: %v\n%s", err, o)
			}
			st, o := pdfsig(t, nss, out)
			if len(st) != tc.sigs {
				t.Fatalf("pdfsig: %d signatures, want %d\n%s", len(st), tc.sigs, o)
			}
			// This poppler cannot check ETSI.RFC3161 document timestamps
			// ("Unimplemented Feature"): openssl checks that one below.
			if st[0] != "Signature is Valid." {
				t.Errorf("pdfsig signature 1: %q\n%s", st[0], o)
			}
			if tc.level == signer.LevelLTA {
				if o, err := docTimestampVerify(t, out, filepath.Join(dir, "tsaroot.pem")); err != nil || !strings.Contains(o, "Verification: OK") {
					t.Errorf("openssl ts -verify of the document timestamp: %v\n%s", err, o)
				}
				if o, err := docTimestampVerify(t, flip(out, bytes.LastIndex(out, []byte("/VRI"))+2), filepath.Join(dir, "tsaroot.pem")); err == nil {
					t.Errorf("openssl ts -verify accepted a changed DSS:\n%s", o)
				}
			}
			streams, vri := dssStreams(t, out)
			if len(streams["OCSPs"]) != 3 || len(streams["Certs"]) < 5 {
				t.Fatalf("DSS holds %d OCSP responses and %d certificates; want 3 and at least 5", len(streams["OCSPs"]), len(streams["Certs"]))
			}
			for i, r := range streams["OCSPs"] {
				if _, err := ocsp.ParseResponse(r, nil); err != nil {
					t.Fatalf("DSS OCSP %d: %v", i, err)
				}
				p := filepath.Join(dir, "resp.der")
				os.WriteFile(p, r, 0o600)
				o, err := run(t, "openssl", "ocsp", "-respin", p, "-resp_text", "-noverify")
				if err != nil || !strings.Contains(o, "Cert Status: good") {
					t.Errorf("openssl ocsp -respin on DSS OCSP %d: %v\n%s", i, err, o)
				}
			}
			// The VRI key is the SHA-1 of the first signature's CMS.
			c0 := bytes.Index(out[len(doc):], []byte("/Contents <")) + len(doc) + len("/Contents <")
			c1 := c0 + bytes.IndexByte(out[c0:], '>')
			padded, _ := hex.DecodeString(string(out[c0:c1]))
			cms := bytes.TrimRight(padded, "\x00")
			sum := sha1.Sum(cms)
			want := strings.ToUpper(hex.EncodeToString(sum[:]))
			if len(vri) != 1 || vri[0] != want {
				t.Errorf("VRI keys %v, want [%s]", vri, want)
			}
		})
	}
}

// docTimestampVerify checks the last /Contents of pdf, a document
// timestamp, over the bytes its /ByteRange covers, with openssl ts.
func docTimestampVerify(t *testing.T, file []byte, tsaRoot string) (string, error) {
	t.Helper()
	c0 := bytes.LastIndex(file, []byte("/Contents <")) + len("/Contents <")
	c1 := c0 + bytes.IndexByte(file[c0:], '>')
	padded, err := hex.DecodeString(string(file[c0:c1]))
	if err != nil {
		t.Fatal(err)
	}
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(padded, &raw); err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "data"), append(bytes.Clone(file[:c0-1]), file[c1+1:]...), 0o600)
	os.WriteFile(filepath.Join(d, "tok"), raw.FullBytes, 0o600)
	return run(t, "openssl", "ts", "-verify", "-data", filepath.Join(d, "data"), "-in", filepath.Join(d, "tok"), "-token_in", "-CAfile", tsaRoot)
}

// TestExtendPAdES raises a PAdES-B-T PDF to B-LT, then B-LTA, then
// renews the B-LTA, each by incremental update: every earlier revision
// is kept byte for byte, pdfsig still finds the signature valid, qpdf
// --check is clean, openssl verifies the last document timestamp, and
// firma's verifier reports the level reached offline (responders down).
// A B-B PDF and a PDF without signature are refused.
// Cost: one test PKI, one signature, three extensions, a dozen tool runs.
func TestExtendPAdES(t *testing.T) {
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
	g := &ltv.Gatherer{HTTP: http.DefaultClient}
	bt, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opt := func(l signer.Level) signer.Options {
		return signer.Options{Level: l, Timestamper: pki.Timestamper(t), Validation: g.Batch()}
	}
	if same, err := signer.ExtendPAdES(ctx, bt, opt(signer.LevelT)); err != nil || !bytes.Equal(same, bt) {
		t.Fatalf("B-T of a B-T PDF: changed=%v err=%v", !bytes.Equal(same, bt), err)
	}
	lt, err := signer.ExtendPAdES(ctx, bt, opt(signer.LevelLT))
	if err != nil {
		t.Fatal(err)
	}
	lta, err := signer.ExtendPAdES(ctx, lt, opt(signer.LevelLTA))
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := signer.ExtendPAdES(ctx, lta, opt(signer.LevelLTA))
	if err != nil {
		t.Fatal(err)
	}
	pki.SetDown(true, true)
	t.Cleanup(func() { pki.SetDown(false, false) })
	v, err := fverify.New(fverify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: &fverify.Online{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		prev, out  []byte
		level      string
		sigs, docs int
	}{{"LT", bt, lt, "B-LT", 1, 0}, {"LTA", lt, lta, "B-LTA", 1, 1}, {"LTA renewed", lta, renewed, "B-LTA", 1, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.HasPrefix(tc.out, tc.prev) || len(tc.out) <= len(tc.prev) {
				t.Fatal("not an incremental update of the previous revision")
			}
			if o, err := qpdfCheck(t, tc.out); err != nil || !strings.Contains(o, "No syntax or stream encoding errors") {
				t.Fatalf("qpdf --check: %v\n%s", err, o)
			}
			st, o := pdfsig(t, nss, tc.out)
			if len(st) != tc.sigs+tc.docs || st[0] != "Signature is Valid." {
				t.Fatalf("pdfsig: %q, want %d entries, the first valid\n%s", st, tc.sigs+tc.docs, o)
			}
			if tc.docs > 0 {
				if o, err := docTimestampVerify(t, tc.out, tsaRoot); err != nil || !strings.Contains(o, "Verification: OK") {
					t.Errorf("openssl ts -verify of the last document timestamp: %v\n%s", err, o)
				}
			}
			rep, err := v.PDF(ctx, tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != fverify.Valid || rep.Signatures[0].Level != tc.level {
				t.Fatalf("verify: %s, level %s; want valid %s\n%+v", rep.Verdict, rep.Signatures[0].Level, tc.level, rep.Signatures[0].Checks)
			}
		})
	}
	bb, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: signer.LevelB}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"B-B": bb, "unsigned": doc} {
		if _, err := signer.ExtendPAdES(ctx, in, opt(signer.LevelLT)); !errors.Is(err, signer.ErrFormat) {
			t.Errorf("%s PDF: %v, want ErrFormat", name, err)
		}
	}
}
