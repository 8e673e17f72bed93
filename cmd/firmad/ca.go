package main

import (
	"context"
	"errors"
	"os"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
)

// caSettings is the CA configuration (ca.Settings: FIRMA_CA_CONFIG,
// FIRMA_CA_BASE_URL, else URLs on the HTTP listener), for parts that need
// the CA's publication URLs. A bad FIRMA_CA_CONFIG stops setupCA; here it
// falls back to the listener.
func caSettings(cfg *config.Config) ca.Config {
	c, err := ca.Settings(os.Getenv, cfg.Listen.HTTP)
	if err != nil {
		return ca.Config{BaseURL: ca.DefaultBaseURL(cfg.Listen.HTTP)}
	}
	return c
}

// setupCA loads the certificate authority that 'firmactl init' set up,
// publishes its CRLs, OCSP responder and CA certificates on the HTTP
// listener, registers CertificateService on gRPC and as REST JSON under
// /v1/certificates and /v1/ca, and starts the scheduled CRL refresh. Without CAs yet firmad still starts: certificate requests are
// refused as not initialised until 'firmactl ca init' runs, and the CAs are
// picked up then without a restart.
//
// The registry, set up after this, must call a.ca.SetCitizens(registry)
// and pass ca.CitizenRevoker{CA: a.ca} as its revocation hook.
func (a *app) setupCA(ctx context.Context) error {
	// FIRMA_CA_CONFIG (a YAML file) and FIRMA_CA_BASE_URL, as firmactl
	// reads them: both must agree, since the URLs go into certificates.
	cfg, err := ca.Settings(os.Getenv, a.cfg.Listen.HTTP)
	if err != nil {
		return err
	}
	if l := a.auditLog(); l != nil {
		cfg.Audit = l
	}
	auth, err := ca.New(cfg, a.ks, a.store, nil, a.log.With("part", "ca"), a.reg)
	if err != nil {
		return err
	}
	if err := auth.Load(ctx); err != nil {
		if !errors.Is(err, ca.ErrNotInitialised) {
			return err
		}
		a.log.Warn("certificate authority not set up: citizen certificates are refused until 'firmactl ca init' runs")
	}
	a.ca = auth
	auth.RegisterHTTP(a.mux)
	svc := api.NewCertificateService(auth, a.log.With("part", "api"))
	firmav1.RegisterCertificateServiceServer(a.grpc, svc)
	operators, err := api.NewAuth(a.cfg.Auth.Operators)
	if err != nil {
		return err
	}
	svc.RegisterCertificatesHTTP(a.mux, operators)
	auth.Start()
	a.onClose("ca", func() error { auth.Stop(); return nil })
	return nil
}
