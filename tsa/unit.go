package tsa

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
)

// Owner is the keystore owner of TSA keys.
const Owner = "system:tsa"

// Keys is the part of the keystore a TSA unit uses.
type Keys interface {
	GenerateMode(ctx context.Context, owner string, t keystore.Type, m keystore.Mode) (*keystore.Key, error)
	Signer(ctx context.Context, id string) (*keystore.Signer, error)
	Destroy(ctx context.Context, id string) error
}

var _ Keys = (*keystore.HSM)(nil)

// IssueFunc certifies a TSA public key; IssuerFunc adapts a CA certificate
// and key to one.
type IssueFunc func(ctx context.Context, pub crypto.PublicKey) (*x509.Certificate, error)

// IssuerFunc returns an IssueFunc that issues with IssueCertificate.
func IssuerFunc(issuer *x509.Certificate, key crypto.Signer, o CertOptions) IssueFunc {
	return func(_ context.Context, pub crypto.PublicKey) (*x509.Certificate, error) {
		return IssueCertificate(issuer, key, pub, o)
	}
}

// DefaultKeyUsagePeriod is how long one TSA key signs tokens before a new
// one replaces it, unless UnitConfig says otherwise. The certificate
// (DefaultCertValidity) outlives it, so tokens stay verifiable long after
// their key stopped signing.
const DefaultKeyUsagePeriod = 365 * 24 * time.Hour

// UnitConfig says how to find or make a TSA unit's key and certificate.
type UnitConfig struct {
	Name    string        // store name of the unit; "" means "default"
	KeyType keystore.Type // of a new key; "" means ECP256
	// Issuer is the current issuing CA; a stored certificate it did not
	// issue (the CA was re-keyed or replaced) is re-issued, for the same
	// key, with Issue.
	Issuer *x509.Certificate
	Issue  IssueFunc
	// KeyUsagePeriod is how long a key signs; 0 means
	// DefaultKeyUsagePeriod. An older key is rolled over: a new key and
	// certificate replace it.
	KeyUsagePeriod time.Duration
	// RenewBefore rolls the key over as well when its certificate has less
	// than this left; 0 means a third of the certificate's lifetime.
	RenewBefore time.Duration
	Now         func() time.Time // nil means time.Now
	Logger      *slog.Logger
	// Auditor records every key the unit makes or destroys, before it
	// does (audit.ChangeKey); required.
	Auditor audit.Appender
}

// Unit is a loaded TSA unit, ready to go in a ServerConfig.
type Unit struct {
	Signer *keystore.Signer
	Cert   *x509.Certificate
}

// LoadUnit returns the named unit's HSM key and certificate. On first use
// it makes a token-mode key and has it certified; later it rolls the key
// over when its usage period ends or its certificate nears its end, and
// re-certifies the same key when the issuing CA changed. Replicas starting
// together may each make a key: the store keeps one, and the others
// destroy theirs. A rolled-over key is kept in the HSM, since replicas
// still running may sign with it until they restart; destroy it then.
func LoadUnit(ctx context.Context, keys Keys, st store.TSAStore, cfg UnitConfig) (*Unit, error) {
	if cfg.Issue == nil || cfg.Issuer == nil {
		return nil, errors.New("tsa unit: issuing CA is required")
	}
	if cfg.Auditor == nil {
		return nil, errors.New("tsa unit: an audit log is required: key changes are recorded")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.KeyType == "" {
		cfg.KeyType = keystore.ECP256
	}
	if cfg.KeyUsagePeriod <= 0 {
		cfg.KeyUsagePeriod = DefaultKeyUsagePeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Two rounds at most: a lost race re-reads what the winner stored.
	for range 2 {
		u, err := loadUnit(ctx, keys, st, cfg)
		if !errors.Is(err, store.ErrConflict) {
			return u, err
		}
	}
	return nil, fmt.Errorf("tsa unit %s: %w: changed by other replicas twice while loading", cfg.Name, store.ErrConflict)
}

func loadUnit(ctx context.Context, keys Keys, st store.TSAStore, cfg UnitConfig) (*Unit, error) {
	rec, err := st.TSAUnit(ctx, cfg.Name)
	if errors.Is(err, store.ErrNotFound) {
		return newKey(ctx, keys, st, cfg, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: %w", cfg.Name, err)
	}
	signer, err := keys.Signer(ctx, rec.KeyID)
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: key: %w", cfg.Name, err)
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: stored certificate: %w", cfg.Name, err)
	}
	now := cfg.Now()
	renew := cfg.RenewBefore
	if renew <= 0 {
		renew = cert.NotAfter.Sub(cert.NotBefore) / 3
	}
	switch {
	case now.Sub(rec.KeySince) >= cfg.KeyUsagePeriod:
		return rollOver(ctx, keys, st, cfg, rec, "key usage period over")
	case now.Add(renew).After(cert.NotAfter):
		return rollOver(ctx, keys, st, cfg, rec, "certificate near its end")
	case !publicKeysEqual(signer.Public(), cert.PublicKey):
		return recertify(ctx, st, cfg, rec, signer, "certificate is for another key")
	case cert.CheckSignatureFrom(cfg.Issuer) != nil:
		return recertify(ctx, st, cfg, rec, signer, "issuing CA changed")
	}
	return &Unit{Signer: signer, Cert: cert}, nil
}

func rollOver(ctx context.Context, keys Keys, st store.TSAStore, cfg UnitConfig, rec *store.TSAUnit, why string) (*Unit, error) {
	cfg.Logger.InfoContext(ctx, "rolling the TSA key over", "unit", cfg.Name, "reason", why, "previous_key", rec.KeyID)
	u, err := newKey(ctx, keys, st, cfg, rec)
	if err == nil {
		cfg.Logger.WarnContext(ctx, "previous TSA key retired; destroy it once every replica has restarted",
			"unit", cfg.Name, "key", rec.KeyID)
	}
	return u, err
}

func recertify(ctx context.Context, st store.TSAStore, cfg UnitConfig, rec *store.TSAUnit, signer *keystore.Signer, why string) (*Unit, error) {
	cfg.Logger.InfoContext(ctx, "re-certifying the TSA key", "unit", cfg.Name, "reason", why)
	cert, err := cfg.Issue(ctx, signer.Public())
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: re-certify: %w", cfg.Name, err)
	}
	next := *rec
	next.Cert, next.UpdatedAt = cert.Raw, cfg.Now().UTC()
	if err := st.ReplaceTSAUnit(ctx, &next, rec.KeyID); err != nil {
		return nil, fmt.Errorf("tsa unit %s: %w", cfg.Name, err)
	}
	return &Unit{Signer: signer, Cert: cert}, nil
}

// newKey makes and certifies a key and stores it as the unit: a new unit
// when prev is nil, else in place of prev.
func newKey(ctx context.Context, keys Keys, st store.TSAStore, cfg UnitConfig, prev *store.TSAUnit) (*Unit, error) {
	details := map[string]string{"purpose": "tsa-unit", "unit": cfg.Name, "type": string(cfg.KeyType)}
	if prev != nil {
		details["replaces"] = prev.KeyID
	}
	var key *keystore.Key
	_, err := audit.ChangeKey(ctx, cfg.Auditor, audit.KeyChange{Actor: Actor, Details: details}, func(ctx context.Context) (string, error) {
		var err error
		if key, err = keys.GenerateMode(ctx, Owner, cfg.KeyType, keystore.ModeToken); err != nil {
			return "", err
		}
		return key.ID, nil
	})
	if err != nil {
		if key != nil {
			// Made, but its result is not recorded: not put in service.
			return nil, dropKey(ctx, keys, cfg, key.ID, fmt.Errorf("tsa unit %s: generate key: %w", cfg.Name, err))
		}
		return nil, fmt.Errorf("tsa unit %s: generate key: %w", cfg.Name, err)
	}
	// Whatever fails from here leaves no unrecorded private key behind.
	drop := func(err error) error { return dropKey(ctx, keys, cfg, key.ID, err) }
	signer, err := keys.Signer(ctx, key.ID)
	if err != nil {
		return nil, drop(fmt.Errorf("tsa unit %s: key: %w", cfg.Name, err))
	}
	cert, err := cfg.Issue(ctx, key.Public)
	if err != nil {
		return nil, drop(fmt.Errorf("tsa unit %s: issue certificate: %w", cfg.Name, err))
	}
	now := cfg.Now().UTC()
	rec := &store.TSAUnit{Name: cfg.Name, KeyID: key.ID, Cert: cert.Raw, KeySince: now, UpdatedAt: now}
	if prev == nil {
		err = st.CreateTSAUnit(ctx, rec)
	} else {
		err = st.ReplaceTSAUnit(ctx, rec, prev.KeyID)
	}
	if err != nil {
		return nil, drop(fmt.Errorf("tsa unit %s: %w", cfg.Name, err))
	}
	cfg.Logger.InfoContext(ctx, "TSA key in service", "unit", cfg.Name, "key", key.ID, "subject", cert.Subject.String(),
		"not_after", cert.NotAfter)
	return &Unit{Signer: signer, Cert: cert}, nil
}

// dropKey destroys a key a failed set-up made, under audit.ChangeKey like
// its generation; err is the set-up's error, returned.
func dropKey(ctx context.Context, keys Keys, cfg UnitConfig, id string, err error) error {
	ctx = context.WithoutCancel(ctx)
	_, derr := audit.ChangeKey(ctx, cfg.Auditor, audit.KeyChange{Destroy: true, KeyID: id, Actor: Actor,
		Details: map[string]string{"purpose": "tsa-unit", "unit": cfg.Name}}, func(ctx context.Context) (string, error) {
		return id, keys.Destroy(ctx, id)
	})
	if derr != nil {
		cfg.Logger.ErrorContext(ctx, "cannot destroy key of failed TSA set-up", "key", id, "err", derr)
	}
	return err
}
