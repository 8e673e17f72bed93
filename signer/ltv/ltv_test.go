package ltv_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer/ltv"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// TestGather runs the gatherer against the test PKI's OCSP responders
// and CRLs: OCSP first, CRLs when OCSP is down, an error naming why when
// neither answers or a certificate is revoked, and an in-process
// responder asked before the network.
func TestGather(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	_, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	_, revoked := pki.User(t, keystore.ECP256, "REVOCADA")
	pki.Revoke(revoked[0], time.Now().Add(-time.Minute))
	tests := []struct {
		name           string
		chain          []*x509.Certificate
		ocspDown, crl  bool
		local          bool
		wantOCSP, wCRL int
		want           error
	}{
		{"ocsp", chain, false, false, false, 2, 0, nil},
		{"crl when ocsp is down", chain, true, false, false, 0, 2, nil},
		{"nothing answers", chain, true, true, false, 0, 0, ltv.ErrUnavailable},
		{"revoked", revoked, false, false, false, 0, 0, ltv.ErrRevoked},
		{"revoked seen in the crl", revoked, true, false, false, 0, 0, ltv.ErrRevoked},
		{"incomplete chain", chain[:1], false, false, false, 0, 0, ltv.ErrChain},
		{"local responder first", chain, true, true, true, 2, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pki.SetDown(false, false)
			g := &ltv.Gatherer{Timeout: 5 * time.Second}
			pki.SetDown(tc.ocspDown, tc.crl)
			if tc.local {
				g.Local = localResponder(pki.Root, pki.Issuing)
			}
			m, err := g.Gather(ctx, tc.chain)
			pki.SetDown(false, false)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.OCSP) != tc.wantOCSP || len(m.CRLs) != tc.wCRL || len(m.Certs) != len(tc.chain) {
				t.Fatalf("%d OCSP, %d CRLs, %d certs; want %d, %d, %d", len(m.OCSP), len(m.CRLs), len(m.Certs), tc.wantOCSP, tc.wCRL, len(tc.chain))
			}
		})
	}
}

// localResponder answers OCSP in process for the given CAs, as firmad's
// built-in CA does, and says "unauthorized" about others.
func localResponder(cas ...*testpki.CA) func(context.Context, []byte) ([]byte, error) {
	return func(_ context.Context, der []byte) ([]byte, error) {
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			return ocsp.MalformedRequestErrorResponse, nil
		}
		for _, ca := range cas {
			h := req.HashAlgorithm.New()
			h.Write(ca.Cert.RawSubject)
			if !bytes.Equal(h.Sum(nil), req.IssuerNameHash) {
				continue
			}
			now := time.Now().Truncate(time.Second)
			return ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
				ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, ca.Key)
		}
		return ocsp.UnauthorizedErrorResponse, nil
	}
}
