package verify_test

import (
	"bytes"
	"context"
	"encoding/asn1"
	"net/http"
	"os"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestPoliciesAttachedCoSigners: the verifier reports the declared policy,
// reads attached content, and reports every signer and countersigner.
// Cost: one test PKI and about ten signatures.
func TestPoliciesAttachedCoSigners(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	ts := pki.Timestamper(t)
	k1, c1 := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	k2, c2 := pki.User(t, keystore.RSA2048, "JOSE MUNOZ PEREZ")
	doc := []byte("Acta de la sesión del 3 de marzo.\n")
	own, err := signer.ParsePolicy("1.3.6.1.4.1.99999.1.2", "sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "https://example.org/p.pdf")
	if err != nil {
		t.Fatal(err)
	}
	wrongAGE := signer.PolicyAGE
	wrongAGE.Digest = make([]byte, 20)
	sign := func(t *testing.T, opt signer.Options) []byte {
		t.Helper()
		sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), k1, c1, opt)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}

	t.Run("policy", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			policy  *signer.Policy
			verdict verify.Verdict
			want    verify.Policy
			check   verify.Status // "" for no policy check
		}{
			{"AGE", &signer.PolicyAGE, verify.Valid, verify.Policy{OID: "2.16.724.1.3.1.1.2.1.9", HashAlgorithm: "SHA-1",
				Hash: "G7roucf600+f03r/o0bAOQ6WAs0=", URI: "https://sede.060.gob.es/politica_de_firma_anexo_1.pdf", Name: "FirmaAGE"}, verify.Passed},
			{"configured", own, verify.Valid, verify.Policy{OID: "1.3.6.1.4.1.99999.1.2", HashAlgorithm: "SHA-256",
				Hash: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", URI: "https://example.org/p.pdf"}, ""},
			{"AGE with another hash", &wrongAGE, verify.Invalid, verify.Policy{OID: "2.16.724.1.3.1.1.2.1.9", HashAlgorithm: "SHA-1",
				Hash: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", URI: "https://sede.060.gob.es/politica_de_firma_anexo_1.pdf", Name: "FirmaAGE"}, verify.Failed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := v.CAdES(ctx, sign(t, signer.Options{Policy: tc.policy}), bytes.NewReader(doc))
				if err != nil {
					t.Fatal(err)
				}
				s := r.Signatures[0]
				if s.Verdict != tc.verdict || s.Policy == nil || *s.Policy != tc.want {
					t.Fatalf("verdict %s, policy %+v; want %s, %+v (%+v)", s.Verdict, s.Policy, tc.verdict, tc.want, s.Checks)
				}
				if got := statuses(s)[verify.CheckPolicy]; got != tc.check {
					t.Errorf("policy check %q, want %q", got, tc.check)
				}
			})
		}
		r, err := v.CAdES(ctx, sign(t, signer.Options{}), bytes.NewReader(doc))
		if err != nil || r.Signatures[0].Policy != nil {
			t.Errorf("no policy declared, reported %+v (%v)", r.Signatures[0].Policy, err)
		}
	})

	t.Run("attached", func(t *testing.T) {
		g := &ltv.Gatherer{HTTP: http.DefaultClient}
		sig := sign(t, signer.Options{Level: signer.LevelLTA, Timestamper: ts, Validation: g, Attached: true})
		r, err := v.CAdES(ctx, sig, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := r.Signatures[0]; r.Verdict != verify.Valid || s.Level != "B-LTA" {
			t.Fatalf("attached B-LTA: %s at %s: %+v", r.Verdict, s.Level, s.Checks)
		}
		i := bytes.Index(sig, doc)
		r, err = v.CAdES(ctx, flip(sig, i+1), nil)
		if err != nil || r.Verdict != verify.Invalid || statuses(r.Signatures[0])[verify.CheckIntegrity] != verify.Failed {
			t.Fatalf("changed attached content: %v %+v", err, r)
		}
		// The same signature checked against the content given instead.
		if r, err := v.CAdES(ctx, sig, bytes.NewReader(doc)); err != nil || r.Verdict != verify.Valid {
			t.Fatalf("attached with the content given: %v %+v", err, r)
		}
	})

	t.Run("cosign", func(t *testing.T) {
		first := sign(t, signer.Options{Level: signer.LevelT, Timestamper: ts})
		both, err := signer.CoSign(ctx, first, doc, nil, k2, c2, signer.Options{Level: signer.LevelT, Timestamper: ts, Policy: &signer.PolicyAGE})
		if err != nil {
			t.Fatal(err)
		}
		r, err := v.CAdES(ctx, both, bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != verify.Valid || len(r.Signatures) != 2 {
			t.Fatalf("%s with %d signatures, want valid with 2", r.Verdict, len(r.Signatures))
		}
		names := map[string]bool{}
		for _, s := range r.Signatures {
			names[s.Signer] = s.Verdict == verify.Valid && s.Level == "B-T"
		}
		if !names[c1[0].Subject.String()] || !names[c2[0].Subject.String()] {
			t.Errorf("signers reported: %v", names)
		}
	})

	t.Run("countersign", func(t *testing.T) {
		first := sign(t, signer.Options{Level: signer.LevelT, Timestamper: ts})
		cs, err := signer.CounterSign(ctx, first, k2, c2, signer.Options{Level: signer.LevelT, Timestamper: ts})
		if err != nil {
			t.Fatal(err)
		}
		r, err := v.CAdES(ctx, cs, bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != verify.Valid || len(r.Signatures) != 2 {
			t.Fatalf("%s with %d signatures, want valid with 2: %+v", r.Verdict, len(r.Signatures), r.Signatures)
		}
		s0, s1 := r.Signatures[0], r.Signatures[1]
		if s0.Signer != c1[0].Subject.String() || s0.CounterSignatureOf != 0 {
			t.Errorf("first report: %s countersigning %d", s0.Signer, s0.CounterSignatureOf)
		}
		if s1.Signer != c2[0].Subject.String() || s1.CounterSignatureOf != 1 || s1.Level != "B-T" || s1.Verdict != verify.Valid {
			t.Errorf("countersignature report: %s countersigning %d at %s, %s: %+v", s1.Signer, s1.CounterSignatureOf, s1.Level, s1.Verdict, s1.Checks)
		}
		// A countersignature's signature value changed: it fails, the
		// signature it countersigns stays valid.
		csv := counterSignatureValue(t, cs)
		i := bytes.Index(cs, csv)
		r, err = v.CAdES(ctx, flip(cs, i+len(csv)/2), bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != verify.Invalid || r.Signatures[0].Verdict != verify.Valid || statuses(r.Signatures[1])[verify.CheckIntegrity] != verify.Failed {
			t.Errorf("changed countersignature: %s, %s / %+v", r.Verdict, r.Signatures[0].Verdict, r.Signatures[1].Checks)
		}
	})

	t.Run("countersign a cosigned signature at B-LT", func(t *testing.T) {
		first := sign(t, signer.Options{Level: signer.LevelT, Timestamper: ts})
		both, err := signer.CoSign(ctx, first, doc, nil, k2, c2, signer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		g := &ltv.Gatherer{HTTP: http.DefaultClient}
		cs, err := signer.CounterSign(ctx, both, k2, c2, signer.Options{Level: signer.LevelLT, Timestamper: ts, Validation: g})
		if err != nil {
			t.Fatal(err)
		}
		r, err := v.CAdES(ctx, cs, bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		// Each of the two signers, each followed by its countersignature.
		if r.Verdict != verify.Valid || len(r.Signatures) != 4 {
			for _, s := range r.Signatures {
				t.Logf("%s %s %s %+v", s.Signer, s.Level, s.Verdict, s.Checks)
			}
			t.Fatalf("%s with %d signatures, want valid with 4", r.Verdict, len(r.Signatures))
		}
		for i, s := range r.Signatures {
			want := 0
			if i%2 == 1 {
				want = i // the signature just before
				if s.Level != "B-LT" {
					t.Errorf("countersignature %d at %s, want B-LT: %+v", i+1, s.Level, s.Checks)
				}
			}
			if s.CounterSignatureOf != want {
				t.Errorf("signature %d countersigns %d, want %d", i+1, s.CounterSignatureOf, want)
			}
		}
	})

	t.Run("pdf cosign", func(t *testing.T) {
		pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
		if err != nil {
			t.Fatal(err)
		}
		// The first at B-LT: its DSS does not cover the second signer,
		// which is B-T and valid all the same.
		g := &ltv.Gatherer{HTTP: http.DefaultClient}
		one, err := signer.PAdES(ctx, pdf, k1, c1, signer.Options{Level: signer.LevelLT, Timestamper: ts, Validation: g}, signer.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		two, err := signer.PAdES(ctx, one, k2, c2, signer.Options{Level: signer.LevelT, Timestamper: ts, Policy: &signer.PolicyAGE}, signer.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := v.PDF(ctx, two)
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != verify.Valid || len(r.Signatures) != 2 || r.Signatures[1].Policy == nil || r.Signatures[1].Policy.Name != "FirmaAGE" {
			for _, s := range r.Signatures {
				t.Logf("%s %s %s %+v", s.Signer, s.Level, s.Verdict, s.Checks)
			}
			t.Fatalf("%s, %d signatures", r.Verdict, len(r.Signatures))
		}
		if r.Signatures[0].Level != "B-LT" || r.Signatures[1].Level != "B-T" {
			t.Errorf("levels %s and %s, want B-LT and B-T", r.Signatures[0].Level, r.Signatures[1].Level)
		}
	})
}

// counterSignatureValue digs out the signature value of the first
// countersignature of the first signer.
func counterSignatureValue(t *testing.T, der []byte) []byte {
	t.Helper()
	type attr struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}
	type si struct {
		Version   int
		SID       asn1.RawValue
		Digest    asn1.RawValue
		Signed    asn1.RawValue `asn1:"optional,tag:0"`
		SigAlg    asn1.RawValue
		Signature []byte
		Unsigned  []attr `asn1:"optional,tag:1"`
	}
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	var sd struct {
		Version int
		Digests asn1.RawValue
		Encap   asn1.RawValue
		Certs   asn1.RawValue `asn1:"optional,tag:0"`
		CRLs    asn1.RawValue `asn1:"optional,tag:1"`
		Signers []si          `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	for _, a := range sd.Signers[0].Unsigned {
		if a.Type.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 6}) {
			var c si
			if _, err := asn1.Unmarshal(a.Values[0].FullBytes, &c); err != nil {
				t.Fatal(err)
			}
			return c.Signature
		}
	}
	t.Fatal("no countersignature")
	return nil
}
