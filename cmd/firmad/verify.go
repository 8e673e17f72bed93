package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/verify"
)

// Environment variables of the verification service: PEM files of trust
// anchors besides the built-in CA's root, e.g. another administration's
// CA or an outside TSA.
const (
	EnvVerifyRoots    = "FIRMA_VERIFY_ROOTS"
	EnvVerifyTSARoots = "FIRMA_VERIFY_TSA_ROOTS"
)

// setupVerify serves VerifyService over gRPC and POST /v1/verify. It
// trusts the built-in CA's root (for citizens and for the built-in TSA),
// the roots in FIRMA_VERIFY_ROOTS and FIRMA_VERIFY_TSA_ROOTS, and for
// timestamps those of tsa.roots. The
// built-in CA answers revocation in process for its own certificates;
// every other certificate is checked over HTTP (OCSP, then CRL).
// It runs after setupCA.
func (a *app) setupVerify(ctx context.Context) error {
	extra, err := pemCerts(os.Getenv(EnvVerifyRoots))
	if err != nil {
		return fmt.Errorf("%s: %w", EnvVerifyRoots, err)
	}
	extraTSA, err := pemCerts(os.Getenv(EnvVerifyTSARoots))
	if err != nil {
		return fmt.Errorf("%s: %w", EnvVerifyTSARoots, err)
	}
	// The external TSAs this service timestamps with (tsa.urls) are
	// trusted for the tokens in its own signatures.
	for i, f := range tsaSection(a.cfg).Roots {
		certs, err := pemCerts(f)
		if err != nil {
			return fmt.Errorf("tsa.roots[%d]: %w", i, err)
		}
		extraTSA = append(extraTSA, certs...)
	}
	log := a.log.With("part", "verify")
	// Answers are kept a minute (at most until their nextUpdate): enough to
	// spare the responders under load, short enough for revocations.
	var revocation verify.RevocationChecker = &verify.Online{CacheTTL: time.Minute}
	if a.ca != nil {
		revocation = verify.Checkers{verify.OCSPResponder(func(ctx context.Context, q []byte) ([]byte, error) {
			r, err := a.ca.RespondOCSP(ctx, q)
			if err != nil {
				return nil, err
			}
			return r.DER, nil
		}), revocation}
	}
	// The verifier is made on first use once the built-in CA exists, so
	// that `firmactl ca init` after start-up needs no restart.
	var (
		mu sync.Mutex
		v  *verify.Verifier
	)
	get := func(context.Context) (*verify.Verifier, error) {
		mu.Lock()
		defer mu.Unlock()
		if v != nil {
			return v, nil
		}
		var root *x509.Certificate
		if a.ca != nil {
			root = a.ca.Root()
		}
		anchors := extra
		if root != nil {
			anchors = append([]*x509.Certificate{root}, extra...)
		}
		if len(anchors) == 0 {
			return nil, fmt.Errorf("%w: the built-in CA is not set up and %s is empty", api.ErrVerifierUnavailable, EnvVerifyRoots)
		}
		cfg := verify.Config{Roots: x509.NewCertPool(), TSARoots: x509.NewCertPool(), Revocation: revocation, Logger: log}
		for _, c := range anchors {
			cfg.Roots.AddCert(c)
			cfg.TSARoots.AddCert(c)
		}
		for _, c := range extraTSA {
			cfg.TSARoots.AddCert(c)
		}
		if root == nil {
			// Not kept: the built-in root may come later. Its metrics
			// are left to the verifier that is kept.
			return verify.New(cfg)
		}
		cfg.Registerer = a.reg
		nv, err := verify.New(cfg)
		if err != nil {
			return nil, err
		}
		v = nv
		return v, nil
	}
	svc := api.NewLazyVerifyService(get, log)
	firmav1.RegisterVerifyServiceServer(a.grpc, svc)
	v1http.RegisterVerifyLimited(a.mux, svc, a.limiter().verify)
	return nil
}

// pemCerts reads the certificates of a PEM file; "" gives none.
func pemCerts(path string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}
