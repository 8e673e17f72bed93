package signer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/verify/testpki"
)

// countingTransport counts OCSP exchanges.
type countingTransport struct{ ocsp atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/ocsp/") {
		c.ocsp.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// ltCMS is the SignedData with its crls and the signer's unsigned
// attributes kept raw, to take apart as a relying party would.
type ltCMS struct {
	Version     int
	Digests     asn1.RawValue
	Encap       asn1.RawValue
	Certs       asn1.RawValue  `asn1:"optional,tag:0"`
	CRLs        asn1.RawValue  `asn1:"optional,tag:1"`
	SignerInfos []ltSignerInfo `asn1:"set"`
}

type ltSignerInfo struct {
	Version   asn1.RawValue
	SID       asn1.RawValue
	Digest    asn1.RawValue
	Signed    asn1.RawValue `asn1:"optional,tag:0"`
	SigAlg    asn1.RawValue
	Signature asn1.RawValue
	Unsigned  asn1.RawValue `asn1:"optional,tag:1"`
}

func elements(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(b, &raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw.FullBytes)
		b = rest
	}
	return out
}

func parseLT(t *testing.T, der []byte) *ltCMS {
	t.Helper()
	var ci cmsContentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	var sd ltCMS
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	if len(sd.SignerInfos) != 1 {
		t.Fatalf("%d signer infos", len(sd.SignerInfos))
	}
	return &sd
}

// unsignedAttr returns the first value of each unsigned attribute with
// oid.
func unsignedAttrs(t *testing.T, si ltSignerInfo, oid asn1.ObjectIdentifier) [][]byte {
	t.Helper()
	var vals [][]byte
	for _, a := range elements(t, si.Unsigned.Bytes) {
		var at cmsAttribute
		if _, err := asn1.Unmarshal(a, &at); err != nil {
			t.Fatal(err)
		}
		if at.Type.Equal(oid) {
			vals = append(vals, at.Values[0].FullBytes)
		}
	}
	return vals
}

var (
	oidTST      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	oidATSv3    = asn1.ObjectIdentifier{0, 4, 0, 1733, 2, 4}
	oidHashIdx  = asn1.ObjectIdentifier{0, 4, 0, 19122, 1, 5}
	oidOCSPResp = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 16, 2}
)

// archiveImprint recomputes an archive-time-stamp-v3's imprint from EN
// 319 122-1 5.5.3, apart from the signer's code: eContentType, the
// content's hash, the SignerInfo's fields up to the signature, and the
// ats-hash-index-v3 the token carries.
func archiveImprint(t *testing.T, h crypto.Hash, sd *ltCMS, content []byte, token []byte) []byte {
	t.Helper()
	var ci cmsContentInfo
	if _, err := asn1.Unmarshal(token, &ci); err != nil {
		t.Fatal(err)
	}
	tsd := parseLTRaw(t, ci.Content.Bytes)
	idx := unsignedAttrs(t, tsd.SignerInfos[0], oidHashIdx)
	if len(idx) != 1 {
		t.Fatalf("archive token has %d ats-hash-index-v3", len(idx))
	}
	var encap struct{ Type asn1.ObjectIdentifier }
	if _, err := asn1.Unmarshal(sd.Encap.FullBytes, &encap); err != nil {
		t.Fatal(err)
	}
	ct, _ := asn1.Marshal(encap.Type)
	d := h.New()
	d.Write(content)
	si := sd.SignerInfos[0]
	hh := h.New()
	for _, b := range [][]byte{ct, d.Sum(nil), si.Version.FullBytes, si.SID.FullBytes, si.Digest.FullBytes, si.Signed.FullBytes, si.SigAlg.FullBytes, si.Signature.FullBytes, idx[0]} {
		hh.Write(b)
	}
	// The index must list every certificate, CRL/OCSP entry and the
	// unsigned attributes before the archive timestamp.
	var index struct {
		Certs, CRLs, Attrs [][]byte
	}
	if _, err := asn1.Unmarshal(idx[0], &index); err != nil {
		t.Fatalf("ats-hash-index-v3: %v", err)
	}
	for name, set := range map[string][][]byte{"certificates": elements(t, sd.Certs.Bytes), "crls": elements(t, sd.CRLs.Bytes)} {
		want := map[string]bool{}
		for _, e := range set {
			x := h.New()
			x.Write(e)
			want[string(x.Sum(nil))] = true
		}
		got := index.Certs
		if name == "crls" {
			got = index.CRLs
		}
		for _, g := range got {
			if !want[string(g)] {
				t.Errorf("ats-hash-index-v3 %s: %x covers nothing in the signature", name, g)
			}
			delete(want, string(g))
		}
		if len(want) != 0 {
			t.Errorf("ats-hash-index-v3 %s: %d elements not covered", name, len(want))
		}
	}
	if len(index.Attrs) != 1 {
		t.Errorf("ats-hash-index-v3 covers %d unsigned attributes, want 1 (the signature timestamp)", len(index.Attrs))
	}
	return hh.Sum(nil)
}

func parseLTRaw(t *testing.T, sdDER []byte) *ltCMS {
	t.Helper()
	var sd ltCMS
	if _, err := asn1.Unmarshal(sdDER, &sd); err != nil {
		t.Fatal(err)
	}
	return &sd
}

// TestCAdESLongTerm signs a batch at B-LT and B-LTA and checks each
// signature with openssl: cms -verify; ts -verify on the signature and
// archive timestamps; ocsp -respin on every embedded OCSP response
// against its issuer. The batch asks each certificate's status once.
// Cost: one test PKI, six signatures, about 40 openssl runs.
func TestCAdESLongTerm(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	tsaRootPEM := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	tr := &countingTransport{}
	g := &ltv.Gatherer{HTTP: &http.Client{Transport: tr}}

	for _, level := range []signer.Level{signer.LevelLT, signer.LevelLTA} {
		t.Run(string(level), func(t *testing.T) {
			tr.ocsp.Store(0)
			batch := g.Batch()
			const docs = 3
			for i := range docs {
				doc := []byte(fmt.Sprintf("Expediente 2026/%06d, documento %d.\n", 120+i, i))
				sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain,
					signer.Options{Level: level, Timestamper: pki.Timestamper(t), Validation: batch})
				if err != nil {
					t.Fatal(err)
				}
				checkLT(t, dir, rootPEM, tsaRootPEM, pki, chain, level, doc, sig)
			}
			// Signer, issuing CA and TSA: three certificates with a
			// status to ask, once each for the batch.
			if n := tr.ocsp.Load(); n != 3 {
				t.Errorf("%d OCSP exchanges for %d documents, want 3 (one per certificate)", n, docs)
			}
		})
	}
}

func checkLT(t *testing.T, dir, rootPEM, tsaRootPEM string, pki *testpki.PKI, chain []*x509.Certificate, level signer.Level, doc, sig []byte) {
	t.Helper()
	sigPath, docPath := filepath.Join(dir, "sig.p7s"), filepath.Join(dir, "doc.txt")
	os.WriteFile(sigPath, sig, 0o600)
	os.WriteFile(docPath, doc, 0o600)
	if out, err := run(t, "openssl", "cms", "-verify", "-binary", "-content", docPath, "-inform", "DER", "-in", sigPath,
		"-CAfile", rootPEM, "-purpose", "any", "-out", os.DevNull); err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	sd := parseLT(t, sig)
	si := sd.SignerInfos[0]

	// Certificates: the signer's chain and the TSA's.
	certs, err := x509.ParseCertificates(sd.Certs.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(append([]*x509.Certificate{}, chain...), pki.TSACert, pki.TSARoot.Cert) {
		found := false
		for _, c := range certs {
			found = found || c.Equal(want)
		}
		if !found {
			t.Errorf("certificate %q missing from SignedData.certificates", want.Subject.CommonName)
		}
	}
	// An OCSP response for each of signer, issuing CA and TSA, which
	// openssl verifies against the issuer.
	type target struct {
		cert, issuer *x509.Certificate
		root         string
	}
	targets := map[string]target{
		chain[0].SerialNumber.String():    {chain[0], chain[1], rootPEM},
		chain[1].SerialNumber.String():    {chain[1], chain[2], rootPEM},
		pki.TSACert.SerialNumber.String(): {pki.TSACert, pki.TSARoot.Cert, tsaRootPEM},
	}
	seen := map[string]bool{}
	for i, e := range elements(t, sd.CRLs.Bytes) {
		var other struct {
			Format asn1.ObjectIdentifier
			Info   asn1.RawValue
		}
		var raw asn1.RawValue
		asn1.Unmarshal(e, &raw)
		if raw.Class != asn1.ClassContextSpecific || raw.Tag != 1 {
			t.Errorf("crls[%d] is not an OCSP response (class %d tag %d)", i, raw.Class, raw.Tag)
			continue
		}
		if _, err := asn1.Unmarshal(append([]byte{0x30}, e[1:]...), &other); err != nil || !other.Format.Equal(oidOCSPResp) {
			t.Fatalf("crls[%d]: other revocation info %v, %v", i, other.Format, err)
		}
		r, err := ocsp.ParseResponse(other.Info.FullBytes, nil)
		if err != nil {
			t.Fatalf("crls[%d]: %v", i, err)
		}
		tg, ok := targets[r.SerialNumber.String()]
		if !ok {
			t.Fatalf("crls[%d]: OCSP response about serial %v, of no certificate here", i, r.SerialNumber)
		}
		seen[r.SerialNumber.String()] = true
		respPath := filepath.Join(dir, "resp.der")
		os.WriteFile(respPath, other.Info.FullBytes, 0o600)
		issuerPEM := testpki.WritePEM(t, dir, "issuer.pem", tg.issuer)
		out, err := run(t, "openssl", "ocsp", "-respin", respPath, "-issuer", issuerPEM, "-serial", "0x"+tg.cert.SerialNumber.Text(16),
			"-CAfile", tg.root, "-verify_other", issuerPEM)
		if err != nil || !strings.Contains(out, "Response verify OK") || !strings.Contains(out, ": good") {
			t.Errorf("openssl ocsp -respin (%s): %v\n%s", tg.cert.Subject.CommonName, err, out)
		}
	}
	if len(seen) != len(targets) {
		t.Errorf("OCSP responses for %d certificates, want %d", len(seen), len(targets))
	}

	tsVerify := func(token, digest []byte, caFile string) (string, error) {
		p := filepath.Join(dir, "token.der")
		os.WriteFile(p, token, 0o600)
		return run(t, "openssl", "ts", "-verify", "-token_in", "-in", p, "-digest", hex.EncodeToString(digest), "-CAfile", caFile)
	}
	var sigValue []byte
	asn1.Unmarshal(si.Signature.FullBytes, &sigValue)
	tst := unsignedAttrs(t, si, oidTST)
	if len(tst) != 1 {
		t.Fatalf("%d signature timestamps", len(tst))
	}
	if out, err := tsVerify(tst[0], sha256Of(sigValue), tsaRootPEM); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl ts -verify (signature timestamp): %v\n%s", err, out)
	}
	ats := unsignedAttrs(t, si, oidATSv3)
	if level != signer.LevelLTA {
		if len(ats) != 0 {
			t.Errorf("%s carries %d archive timestamps", level, len(ats))
		}
		return
	}
	if len(ats) != 1 {
		t.Fatalf("%d archive timestamps, want 1", len(ats))
	}
	imprint := archiveImprint(t, crypto.SHA256, sd, doc, ats[0])
	if out, err := tsVerify(ats[0], imprint, tsaRootPEM); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl ts -verify (archive timestamp): %v\n%s", err, out)
	}
	// Any covered byte changed: the document, or an OCSP response.
	if out, err := tsVerify(ats[0], archiveImprint(t, crypto.SHA256, sd, flip(doc, 1), ats[0]), tsaRootPEM); err == nil {
		t.Errorf("archive timestamp accepted over a changed document:\n%s", out)
	}
}

func sha256Of(b []byte) []byte {
	h := crypto.SHA256.New()
	h.Write(b)
	return h.Sum(nil)
}

// TestExtendCAdES raises signatures made at B-B and B-T to B-LT and
// B-LTA without the key, and checks them as TestCAdESLongTerm does.
func TestExtendCAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert)
	tsaRootPEM := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc := []byte("Acta de la sesión ordinaria, 2026-11-30.\n")
	digest := sha256Of(doc)
	for _, tc := range []struct {
		from, to signer.Level
	}{{signer.LevelB, signer.LevelLT}, {signer.LevelB, signer.LevelLTA}, {signer.LevelT, signer.LevelLT}, {signer.LevelT, signer.LevelLTA}} {
		t.Run(string(tc.from)+" to "+string(tc.to), func(t *testing.T) {
			sig, err := signer.CAdES(ctx, digest, key, chain, signer.Options{Level: tc.from, Timestamper: pki.Timestamper(t)})
			if err != nil {
				t.Fatal(err)
			}
			up, err := signer.ExtendCAdES(ctx, sig, digest, signer.Options{Level: tc.to, Timestamper: pki.Timestamper(t), Validation: &ltv.Gatherer{}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.from == signer.LevelT {
				// The signature timestamp is kept as it was.
				_, before := parts(t, sig)
				if !bytes.Contains(up, before) {
					t.Error("the signature timestamp changed")
				}
			}
			checkLT(t, dir, rootPEM, tsaRootPEM, pki, chain, tc.to, doc, up)
		})
	}
}
