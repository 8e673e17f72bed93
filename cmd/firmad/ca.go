package main

import (
	"context"
	"errors"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest/pkihttp"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/ca"
)

// setupCA loads the certificate authority that 'firmactl init' set up,
// publishes its CRLs, OCSP responder and CA certificates on the HTTP
// listener, registers CertificateService on gRPC and as REST JSON under
// /v1/certificates and /v1/ca, and starts the scheduled CRL refresh.
// Without CAs yet firmad still starts: certificate requests are
// refused as not initialised until 'firmactl init' (or 'firmactl ca init') runs, and the CAs are
// picked up then without a restart.
//
// The registry, set up after this, must call a.ca.SetCitizens(registry)
// and pass ca.CitizenRevoker{CA: a.ca} as its revocation hook.
func (a *app) setupCA(ctx context.Context) error {
	// The ca section, as firmactl reads it: both must agree, since the
	// URLs go into certificates.
	cfg, err := ca.FromConfig(a.cfg)
	if err != nil {
		return err
	}
	if a.audit != nil {
		cfg.Audit = a.audit
	}
	auth, err := ca.New(cfg, a.ks, a.store, nil, a.log.With("part", "ca"), a.reg)
	if err != nil {
		return err
	}
	if err := auth.Load(ctx); err != nil {
		if !errors.Is(err, ca.ErrNotInitialised) {
			return err
		}
		a.log.Warn("certificate authority not set up: citizen certificates are refused until 'firmactl init' (or 'firmactl ca init') runs")
	}
	a.ca = auth
	pkihttp.RegisterLimited(a.mux, auth, a.log.With("part", "ca"), a.limiter().ocsp)
	svc := api.NewCertificateService(auth, a.log.With("part", "api"))
	firmav1.RegisterCertificateServiceServer(a.grpc, svc)
	operators, err := api.NewAuth(a.cfg.Auth.Operators)
	if err != nil {
		return err
	}
	v1http.RegisterCertificates(a.mux, svc, operators)
	auth.Start()
	a.onClose("ca", func() error { auth.Stop(); return nil })
	return nil
}
