package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestXAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	key, chain := pki.User(t, keystore.RSA2048, "PEDRO SANZ")
	opt := signer.Options{Level: signer.LevelT, PSS: true, Timestamper: pki.Timestamper(t)}
	xml := []byte(`<Solicitud xmlns="urn:example"><Importe>10</Importe></Solicitud>`)
	signed, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), signer.Document{Content: xml}, key, chain, opt, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The token with one byte changed, re-encoded in place.
	re := regexp.MustCompile(`<xades:EncapsulatedTimeStamp>([^<]+)<`)
	m := re.FindSubmatch(signed)
	tok, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	badTok := bytes.Replace(signed, m[1], []byte(base64.StdEncoding.EncodeToString(flip(tok, len(tok)-5))), 1)

	tests := []struct {
		name    string
		doc     []byte
		want    verify.Verdict
		failed  string
		wantErr error
	}{
		{"valid B-T", signed, verify.Valid, "", nil},
		{"changed document", bytes.Replace(signed, []byte("<Importe>10<"), []byte("<Importe>90<"), 1), verify.Invalid, verify.CheckIntegrity, nil},
		{"changed timestamp token", badTok, verify.Invalid, verify.CheckTimestamp, nil},
		{"no signature", xml, "", "", xades.ErrNoSignature},
		{"doctype", append([]byte(`<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>`), signed...), "", "", xades.ErrDoctype},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.XAdES(ctx, tc.doc, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if r.Verdict != tc.want || len(r.Signatures) != 1 {
				t.Fatalf("verdict %s, %d signatures: %+v", r.Verdict, len(r.Signatures), r.Signatures)
			}
			s := r.Signatures[0]
			st := statuses(s)
			if tc.failed != "" && st[tc.failed] != verify.Failed {
				t.Errorf("%s is %s, want failed: %+v", tc.failed, st[tc.failed], s.Checks)
			}
			if tc.want == verify.Valid {
				for _, c := range []string{verify.CheckIntegrity, verify.CheckSigningCert, verify.CheckTimestamp, verify.CheckChain, verify.CheckRevocation} {
					if st[c] != verify.Passed {
						t.Errorf("%s: %s", c, st[c])
					}
				}
				if s.Format != verify.FormatXAdES || s.Level != "B-T" || s.TimestampTime.IsZero() || s.Signer == "" {
					t.Errorf("report %+v", s)
				}
			}
		})
	}
	if _, err := v.XAdES(ctx, func() []byte {
		b, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), signer.Document{Content: []byte("text")}, key, chain, signer.Options{}, signer.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}(), nil); !errors.Is(err, verify.ErrNoContent) {
		t.Errorf("detached without content: %v, want ErrNoContent", err)
	}
}

// TestXAdESLongTerm verifies XAdES B-LT and B-LTA offline: with the test
// PKI's OCSP responders and CRL servers down, the revocation data the
// signature carries answers for the chain, the archive timestamp covers
// it, and the report says B-LTA; a changed byte of that data fails the
// archive timestamp.
func TestXAdESLongTerm(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	key, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	xml := []byte(`<Solicitud xmlns="urn:example"><Importe>10</Importe></Solicitud>`)
	sign := func(level signer.Level) []byte {
		opt := signer.Options{Level: level, Timestamper: pki.Timestamper(t), Validation: &ltv.Gatherer{}}
		out, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), signer.Document{Content: xml}, key, chain, opt, signer.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	lt, lta := sign(signer.LevelLT), sign(signer.LevelLTA)
	pki.SetDown(true, true)
	i := bytes.Index(lta, []byte("<xades:EncapsulatedOCSPValue>")) + len("<xades:EncapsulatedOCSPValue>") + 30
	changed := bytes.Clone(lta)
	changed[i] = map[bool]byte{true: 'B', false: 'A'}[changed[i] == 'A']
	tests := []struct {
		name    string
		doc     []byte
		verdict verify.Verdict
		level   string
		checks  map[string]verify.Status
	}{
		{"B-LT offline", lt, verify.Valid, "B-LT", map[string]verify.Status{verify.CheckValidationData: verify.Passed, verify.CheckRevocation: verify.Passed}},
		{"B-LTA offline", lta, verify.Valid, "B-LTA", map[string]verify.Status{verify.CheckValidationData: verify.Passed, verify.CheckArchiveTimestamp: verify.Passed}},
		{"B-LTA with changed validation data", changed, verify.Invalid, "", map[string]verify.Status{verify.CheckArchiveTimestamp: verify.Failed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.XAdES(ctx, tc.doc, nil)
			if err != nil || len(r.Signatures) != 1 {
				t.Fatalf("verify: %v", err)
			}
			s := r.Signatures[0]
			st := statuses(s)
			if r.Verdict != tc.verdict || (tc.level != "" && s.Level != tc.level) {
				t.Errorf("verdict %s level %s, want %s %s: %+v", r.Verdict, s.Level, tc.verdict, tc.level, s.Checks)
			}
			for c, want := range tc.checks {
				if st[c] != want {
					t.Errorf("%s is %s, want %s: %+v", c, st[c], want, s.Checks)
				}
			}
		})
	}
}
