package main

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/tsa"
)

// Built-in TSA settings. They belong in config.Config (a `tsa:` section:
// policy, accuracy, key_type, serial_block); until it has one these are
// the values firmad uses.
var (
	// tsaPolicy is ETSI EN 319 421's best-practices time-stamp policy
	// (itu-t(0) identified-organization(4) etsi(0) time-stamp-policy(2023)
	// policy-identifiers(1) best-practices-ts-policy(1)).
	tsaPolicy = asn1.ObjectIdentifier{0, 4, 0, 2023, 1, 1}
)

const (
	tsaAccuracy = time.Second
	tsaKeyType  = keystore.ECP256
	// tsaSerialBlock 1 commits every serial before use: serials increase
	// across all replicas. The benchmark shows no gain from larger blocks,
	// since the HSM signature dominates.
	tsaSerialBlock = 1
	tsaUnit        = "default"
	// caIssuing is the ca package's store name of the issuing CA.
	caIssuing = "issuing"
)

// setupTSA starts the built-in RFC 3161 time-stamping authority: POST
// application/timestamp-query to /tsa, and its certificate chain (PEM) at
// /tsa/certs. Its key is a token key in the HSM, certified by the built-in
// issuing CA; a fresh install without a CA yet runs without the TSA.
func (a *app) setupTSA(ctx context.Context) error {
	rec, err := a.store.Authority(ctx, caIssuing)
	if errors.Is(err, store.ErrNotFound) {
		a.log.Warn("built-in TSA not started: no issuing CA yet (run firmactl init)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("tsa: issuing CA: %w", err)
	}
	if rec.KeyID == "" {
		a.log.Warn("built-in TSA not started: the issuing CA's key is not in this HSM")
		return nil
	}
	issuing, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return fmt.Errorf("tsa: issuing CA certificate: %w", err)
	}
	issuerKey, err := a.ks.Signer(ctx, rec.KeyID)
	if err != nil {
		return fmt.Errorf("tsa: issuing CA key: %w", err)
	}
	log := a.log.With("part", "tsa")
	unit, err := tsa.LoadUnit(ctx, a.ks, a.store, tsa.UnitConfig{
		Name:    tsaUnit,
		KeyType: tsaKeyType,
		Issuer:  issuing,
		Issue:   tsa.IssuerFunc(issuing, issuerKey, tsa.CertOptions{}),
		Logger:  log,
	})
	if err != nil {
		return err
	}
	srv, err := tsa.NewServer(tsa.ServerConfig{
		Signer:     unit.Signer,
		Cert:       unit.Cert,
		Chain:      []*x509.Certificate{issuing},
		Policy:     tsaPolicy,
		Accuracy:   tsaAccuracy,
		Serials:    tsa.NewSequence(a.store, tsaUnit, tsaSerialBlock),
		Logger:     log,
		Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	// A TSA must not claim an accuracy its clock does not have. Until the
	// configuration can require it (tsa.require_synced_clock), an
	// unsynchronised clock is reported, not enforced, so that development
	// machines without NTP still run.
	if err := tsa.KernelClock(tsaAccuracy)(); err != nil {
		log.Warn("built-in TSA clock is not synchronised within its accuracy", "accuracy", tsaAccuracy, "err", err)
	}
	a.mux.Handle("/tsa", srv)
	a.mux.Handle("/tsa/certs", srv.CertificatesHandler())
	a.ready("tsa", func(context.Context) error {
		if now := time.Now(); now.After(unit.Cert.NotAfter) {
			return fmt.Errorf("tsa certificate expired at %s", unit.Cert.NotAfter.Format(time.RFC3339))
		}
		return nil
	})
	log.Info("built-in TSA serving at /tsa", "subject", unit.Cert.Subject.String(), "not_after", unit.Cert.NotAfter,
		"policy", tsaPolicy.String())
	return nil
}
