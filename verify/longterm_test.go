package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func checkOf(s *verify.Signature, name string) verify.Check {
	for _, c := range s.Checks {
		if c.Name == name {
			return c
		}
	}
	return verify.Check{}
}

// TestCAdESLongTermOffline verifies B-LT and B-LTA signatures with no
// revocation checker and the test PKI's responders down: the level
// reached comes from what the signature carries. B-LTA still verifies
// with the clock past the signer certificate's expiry, and any change
// to a covered byte (an embedded OCSP response, a certificate) fails
// the archive timestamp.
func TestCAdESLongTermOffline(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc := []byte("Resolución 2026/771: concedida.\n")
	g := &ltv.Gatherer{}
	sign := func(level signer.Level) []byte {
		sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, signer.Options{Level: level, Timestamper: pki.Timestamper(t), Validation: g})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	lt, lta, bt := sign(signer.LevelLT), sign(signer.LevelLTA), sign(signer.LevelT)
	// An archive timestamp renewed: a second one over the first.
	sum := sha256.Sum256(doc)
	renewed, err := signer.ExtendCAdES(ctx, lta, sum[:], signer.Options{Level: signer.LevelLTA, Timestamper: pki.Timestamper(t), Validation: g})
	if err != nil {
		t.Fatal(err)
	}
	// Revoked after signing: the embedded status, taken at signing, stands.
	pki.Revoke(chain[0], time.Now())
	// A certificate revoked before signing gets no long-term signature.
	rkey, rchain := pki.User(t, keystore.ECP256, "REVOCADA ANTES")
	pki.Revoke(rchain[0], time.Now().Add(-time.Hour))
	if _, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), rkey, rchain, signer.Options{Level: signer.LevelLT, Timestamper: pki.Timestamper(t), Validation: g}); !errors.Is(err, ltv.ErrRevoked) {
		t.Fatalf("B-LT with a certificate revoked before signing: %v, want ltv.ErrRevoked", err)
	}
	pki.SetDown(true, true)
	t.Cleanup(func() { pki.SetDown(false, false) })
	offline := func(now time.Time) *verify.Verifier {
		v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert),
			Revocation: &verify.Online{}, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// A digit of the first embedded OCSP response's producedAt, whose
	// change keeps the encoding valid.
	ocspAt := func(sig []byte) int {
		i := bytes.Index(sig, []byte{0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x10, 0x02}) // id-ri-ocsp-response
		j := bytes.Index(sig[i:], []byte{0x18, 0x0f})                                             // GeneralizedTime
		if i < 0 || j < 0 {
			t.Fatal("no embedded OCSP response found")
		}
		return i + j + 2 + 13
	}
	late := chain[0].NotAfter.Add(24 * time.Hour)
	tests := []struct {
		name        string
		sig         []byte
		now         time.Time
		wantVerdict verify.Verdict
		wantLevel   string
		failed      string // a check that must fail
	}{
		{"B-T needs the network", bt, time.Now(), verify.VerdictIndeterminate, "B-T", ""},
		{"B-LT offline, revoked since", lt, time.Now(), verify.Valid, "B-LT", ""},
		{"B-LTA offline", lta, time.Now(), verify.Valid, "B-LTA", ""},
		{"B-LTA after the signer certificate expired", lta, late, verify.Valid, "B-LTA", ""},
		{"B-LTA renewed", renewed, late, verify.Valid, "B-LTA", ""},
		{"B-LTA renewed, first archive timestamp changed", flip(renewed, bytes.Index(renewed, []byte{0x06, 0x06, 0x04, 0x00, 0x8d, 0x45, 0x02, 0x04})+40), time.Now(), verify.Invalid, "", ""},
		{"B-LTA with an embedded OCSP response changed", flip(lta, ocspAt(lta)), time.Now(), verify.Invalid, "", verify.CheckArchiveTimestamp},
		{"B-LTA with a certificate changed", flip(lta, bytes.Index(lta, pki.Root.Cert.Raw)+len(pki.Root.Cert.Raw)-2), time.Now(), verify.Invalid, "", ""},
		{"B-LTA over another document", lta, time.Now(), verify.Invalid, "", verify.CheckIntegrity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			content := doc
			if strings.Contains(tc.name, "another document") {
				content = []byte("otro")
			}
			r, err := offline(tc.now).CAdES(ctx, tc.sig, bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			s := r.Signatures[0]
			if r.Verdict != tc.wantVerdict || (tc.wantLevel != "" && s.Level != tc.wantLevel) {
				t.Fatalf("verdict %s level %s, want %s %s: %+v", r.Verdict, s.Level, tc.wantVerdict, tc.wantLevel, s.Checks)
			}
			if tc.failed != "" && checkOf(s, tc.failed).Status != verify.Failed {
				t.Fatalf("check %s: %+v, want failed; all: %+v", tc.failed, checkOf(s, tc.failed), s.Checks)
			}
		})
	}
}

// TestPAdESLongTermOffline verifies PAdES B-LT (DSS) and B-LTA (document
// timestamp after the DSS) with the test PKI's responders down.
func TestPAdESLongTermOffline(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(level signer.Level) []byte {
		out, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: level, Timestamper: pki.Timestamper(t), Validation: &ltv.Gatherer{}}, signer.PDFOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	lt, lta := sign(signer.LevelLT), sign(signer.LevelLTA)
	pki.SetDown(true, true)
	t.Cleanup(func() { pki.SetDown(false, false) })
	v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: &verify.Online{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		pdf   []byte
		level string
		sigs  int
	}{{"B-LT", lt, "B-LT", 1}, {"B-LTA", lta, "B-LTA", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.PDF(ctx, tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != verify.Valid || len(r.Signatures) != tc.sigs || r.Signatures[0].Level != tc.level {
				t.Fatalf("verdict %s, %d signatures, level %s; want valid, %d, %s: %+v", r.Verdict, len(r.Signatures), r.Signatures[0].Level, tc.sigs, tc.level, r.Signatures[0].Checks)
			}
		})
	}
}
