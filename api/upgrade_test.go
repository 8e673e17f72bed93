package api_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"os"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestUpgradeSignatureGRPC raises a CAdES-B-T and a PAdES-B-T made
// elsewhere (the test PKI's signer) to B-LT and B-LTA through
// TransactionService.UpgradeSignature, behind the portal's API key, and
// checks the level firma's verifier reports; refusals carry their
// reasons. Cost: one softhsm token, one test PKI, four upgrades.
func TestUpgradeSignatureGRPC(t *testing.T) {
	var pki *testpki.PKI
	s := newTxServerTLS(t, nil, func(o *transaction.Options) {
		pki = testpki.New(t)
		o.Timestamper = pki.Timestamper(t)
		o.Validation = &ltv.Gatherer{}
	})
	ctx := context.Background()
	a, err := s.portals.CreatePortal(opCtx(), &firmav1.CreatePortalRequest{Spec: &firmav1.PortalSpec{Name: "Sede",
		RedirectUrls: []string{"https://a.example.es/ok"}, ApiKey: true}})
	if err != nil {
		t.Fatal(err)
	}
	tx := firmav1.NewTransactionServiceClient(s.conn)
	key, chain := pki.User(t, keystore.ECP256, "FIRMANTE EXTERNO")
	content := []byte("Contrato 2026/57.\n")
	sum := sha256.Sum256(content)
	cades, err := signer.CAdES(ctx, sum[:], key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	pades, err := signer.PAdES(ctx, doc, key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		req   *firmav1.UpgradeSignatureRequest
		check func([]byte) (*verify.Report, error)
	}{
		{"CAdES B-LT", &firmav1.UpgradeSignatureRequest{Signature: cades, Digest: sum[:], Level: "B-LT"},
			func(b []byte) (*verify.Report, error) { return v.CAdESDigest(ctx, b, crypto.SHA256, sum[:]) }},
		{"CAdES B-LTA", &firmav1.UpgradeSignatureRequest{Signature: cades, Digest: sum[:], Level: "B-LTA", Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES},
			func(b []byte) (*verify.Report, error) { return v.CAdESDigest(ctx, b, crypto.SHA256, sum[:]) }},
		{"PAdES B-LT", &firmav1.UpgradeSignatureRequest{Signature: pades, Level: "B-LT"},
			func(b []byte) (*verify.Report, error) { return v.PDF(ctx, b) }},
		{"PAdES B-LTA", &firmav1.UpgradeSignatureRequest{Signature: pades, Level: "B-LTA", Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_PADES},
			func(b []byte) (*verify.Report, error) { return v.PDF(ctx, b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tx.UpgradeSignature(portalCtx(a.ApiKey), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if out.Level != tc.req.Level {
				t.Errorf("level %q, want %q", out.Level, tc.req.Level)
			}
			rep, err := tc.check(out.Signature)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != verify.Valid || rep.Signatures[0].Level != tc.req.Level {
				t.Fatalf("verify: %s at %s, want valid at %s: %+v", rep.Verdict, rep.Signatures[0].Level, tc.req.Level, rep.Signatures[0].Checks)
			}
		})
	}
	_, err = tx.UpgradeSignature(ctx, &firmav1.UpgradeSignatureRequest{Signature: cades, Digest: sum[:], Level: "B-LT"})
	wantReason(t, err, codes.Unauthenticated, "unauthenticated")
	_, err = tx.UpgradeSignature(portalCtx(a.ApiKey), &firmav1.UpgradeSignatureRequest{Signature: cades, Digest: sum[:], Level: "B-XL"})
	wantReason(t, err, codes.InvalidArgument, string(transaction.CodeInvalidRequest))
	_, err = tx.UpgradeSignature(portalCtx(a.ApiKey), &firmav1.UpgradeSignatureRequest{Signature: cades, Digest: sum[:5], Level: "B-LT"})
	wantReason(t, err, codes.InvalidArgument, string(transaction.CodeInvalidRequest))
	_, err = tx.UpgradeSignature(portalCtx(a.ApiKey), &firmav1.UpgradeSignatureRequest{Signature: cades, Level: "B-LT", Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_XADES})
	wantReason(t, err, codes.InvalidArgument, string(transaction.CodeInvalidRequest))
}
