package ca

import (
	"context"
	"crypto/x509"

	"github.com/firma-cloud/firma/signer/ltv"
)

// Gatherer returns a gatherer of B-LT validation material whose
// in-process sources are this CA's OCSP responder and CRLs, so that the
// status of its own certificates costs no network exchange.
func (a *Authority) Gatherer() *ltv.Gatherer {
	return &ltv.Gatherer{
		// Read on each use: the CA may be set up after start.
		Issuers: func() []*x509.Certificate {
			var out []*x509.Certificate
			for _, name := range []string{nameRoot, nameIssuing} {
				if c, _ := a.CACertificate(name); c != nil {
					out = append(out, c)
				}
			}
			return out
		},
		Local: func(ctx context.Context, q []byte) ([]byte, error) {
			r, err := a.RespondOCSP(ctx, q)
			if err != nil {
				return nil, err
			}
			return r.DER, nil
		},
		LocalCRL: func(ctx context.Context, issuer *x509.Certificate) ([]byte, error) {
			for _, name := range []string{nameRoot, nameIssuing} {
				if c, _ := a.CACertificate(name); c != nil && c.Equal(issuer) {
					crl, err := a.CRL(ctx, name)
					if err != nil {
						return nil, err
					}
					return crl.DER, nil
				}
			}
			return nil, nil
		},
	}
}
