package verify_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestPDF(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	key2, chain2 := pki.User(t, keystore.RSA2048, "LUIS MARTIN")
	opt := signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}
	once, err := signer.PAdES(ctx, doc, key, chain, opt, signer.PDFOptions{Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	twice, err := signer.PAdES(ctx, once, key2, chain2, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := signer.DocumentTimestamp(ctx, twice, pki.Timestamper(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	// One byte of the first page's text, inside both signed ranges.
	at := len("%PDF-1.7\n") + 400
	tests := []struct {
		name     string
		pdf      []byte
		verdicts []verify.Verdict
		levels   []string
		whole    []bool
	}{
		{"signed once", once, []verify.Verdict{verify.Valid}, []string{"B-T"}, []bool{true}},
		{"signed twice", twice, []verify.Verdict{verify.Valid, verify.Valid}, []string{"B-T", "B-B"}, []bool{false, true}},
		{"changed after signing", flip(twice, at), []verify.Verdict{verify.Invalid, verify.Invalid}, []string{"B-T", "B-B"}, []bool{false, true}},
		{"document timestamp", stamped, []verify.Verdict{verify.Valid, verify.Valid, verify.Valid}, []string{"B-T", "B-B", ""}, []bool{false, false, true}},
		{"document timestamp, changed", flip(stamped, at), []verify.Verdict{verify.Invalid, verify.Invalid, verify.Invalid}, []string{"B-T", "B-B", ""}, []bool{false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.PDF(ctx, tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Signatures) != len(tc.verdicts) {
				t.Fatalf("%d signatures, want %d", len(r.Signatures), len(tc.verdicts))
			}
			for i, s := range r.Signatures {
				if s.Verdict != tc.verdicts[i] || s.Level != tc.levels[i] || s.CoversWholeDocument == nil || *s.CoversWholeDocument != tc.whole[i] {
					t.Errorf("signature %d (%s): verdict %s level %s whole %v; checks %+v", i, s.Field, s.Verdict, s.Level, s.CoversWholeDocument, s.Checks)
				}
				if tc.levels[i] == "" {
					if s.Format != verify.FormatDocTimestamp || (s.Verdict == verify.Valid && s.TimestampTime.IsZero()) {
						t.Errorf("document timestamp %d: format %q time %v", i, s.Format, s.TimestampTime)
					}
					continue
				}
				if s.Format != verify.FormatPAdES || s.Field == "" || s.SigningTime.IsZero() {
					t.Errorf("signature %d: format %q field %q signing time %v", i, s.Format, s.Field, s.SigningTime)
				}
			}
		})
	}

	// A PDF that another tool signed and we did not: pdfsig's own output
	// cannot be produced here without an NSS key, so the unsigned and
	// malformed cases stand for outside input.
	if _, err := v.PDF(ctx, doc); !errors.Is(err, verify.ErrNoSignature) {
		t.Errorf("unsigned PDF: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("%PDF-1.7\ngarbage"), twice[:len(twice)/2]} {
		if r, err := v.PDF(ctx, bad); err == nil && r.Verdict == verify.Valid {
			t.Errorf("malformed PDF reported valid")
		}
	}
}

func FuzzPDF(f *testing.F) {
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	v, err := verify.New(verify.Config{Roots: testpki.Pool()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v.PDF(context.Background(), in)
	})
}

func FuzzCAdES(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	v, err := verify.New(verify.Config{Roots: testpki.Pool()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v.CAdES(context.Background(), in, nil)
	})
}
