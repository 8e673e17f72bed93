package tsa

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

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

var _ Keys = (*keystore.Keystore)(nil)

// IssueFunc certifies a TSA public key; IssuerFunc adapts a CA certificate
// and key to one.
type IssueFunc func(ctx context.Context, pub crypto.PublicKey) (*x509.Certificate, error)

// IssuerFunc returns an IssueFunc that issues with IssueCertificate.
func IssuerFunc(issuer *x509.Certificate, key crypto.Signer, o CertOptions) IssueFunc {
	return func(_ context.Context, pub crypto.PublicKey) (*x509.Certificate, error) {
		return IssueCertificate(issuer, key, pub, o)
	}
}

// UnitConfig says how to find or make a TSA unit's key and certificate.
type UnitConfig struct {
	Name    string        // store name of the unit; "" means "default"
	KeyType keystore.Type // of a new key; "" means ECP256
	// Issuer is the current issuing CA; a stored certificate it did not
	// issue (the CA was re-keyed or replaced) is re-issued with Issue.
	Issuer *x509.Certificate
	Issue  IssueFunc
	// RenewBefore re-issues the certificate, for the same key, when it has
	// less than this left; 0 means a third of its lifetime.
	RenewBefore time.Duration
	Now         func() time.Time // nil means time.Now
	Logger      *slog.Logger
}

// Unit is a loaded TSA unit, ready to go in a ServerConfig.
type Unit struct {
	Signer *keystore.Signer
	Cert   *x509.Certificate
}

// LoadUnit returns the named unit's HSM key and certificate, making a
// token-mode key and having it certified on first use, and re-certifying
// the same key when the certificate nears its end or the issuing CA
// changed. Two replicas starting together may both make a key: the store
// keeps the first, and the loser destroys its own.
func LoadUnit(ctx context.Context, keys Keys, st store.TSAStore, cfg UnitConfig) (*Unit, error) {
	if cfg.Issue == nil || cfg.Issuer == nil {
		return nil, errors.New("tsa unit: issuing CA is required")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.KeyType == "" {
		cfg.KeyType = keystore.ECP256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rec, err := st.TSAUnit(ctx, cfg.Name)
	if errors.Is(err, store.ErrNotFound) {
		var u *Unit
		u, err = createUnit(ctx, keys, st, cfg)
		if !errors.Is(err, store.ErrConflict) {
			return u, err
		}
		// Another replica created the unit first: use its key.
		rec, err = st.TSAUnit(ctx, cfg.Name)
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
	if why := renewReason(cert, signer, cfg); why != "" {
		cfg.Logger.InfoContext(ctx, "renewing TSA certificate", "unit", cfg.Name, "reason", why)
		cert, err = cfg.Issue(ctx, signer.Public())
		if err != nil {
			return nil, fmt.Errorf("tsa unit %s: renew certificate: %w", cfg.Name, err)
		}
		rec.Cert, rec.UpdatedAt = cert.Raw, cfg.Now().UTC()
		if err := st.ReplaceTSAUnit(ctx, rec); err != nil {
			return nil, fmt.Errorf("tsa unit %s: %w", cfg.Name, err)
		}
	}
	return &Unit{Signer: signer, Cert: cert}, nil
}

func renewReason(cert *x509.Certificate, signer crypto.Signer, cfg UnitConfig) string {
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return "certificate is for another key"
	}
	if cert.CheckSignatureFrom(cfg.Issuer) != nil {
		return "issuing CA changed"
	}
	renew := cfg.RenewBefore
	if renew <= 0 {
		renew = cert.NotAfter.Sub(cert.NotBefore) / 3
	}
	if cfg.Now().Add(renew).After(cert.NotAfter) {
		return "certificate near its end"
	}
	return ""
}

func createUnit(ctx context.Context, keys Keys, st store.TSAStore, cfg UnitConfig) (*Unit, error) {
	key, err := keys.GenerateMode(ctx, Owner, cfg.KeyType, keystore.ModeToken)
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: generate key: %w", cfg.Name, err)
	}
	// Whatever fails from here leaves no unrecorded private key behind.
	drop := func(err error) error {
		if derr := keys.Destroy(context.WithoutCancel(ctx), key.ID); derr != nil {
			cfg.Logger.ErrorContext(ctx, "cannot destroy key of failed TSA set-up", "key", key.ID, "err", derr)
		}
		return err
	}
	signer, err := keys.Signer(ctx, key.ID)
	if err != nil {
		return nil, drop(fmt.Errorf("tsa unit %s: key: %w", cfg.Name, err))
	}
	cert, err := cfg.Issue(ctx, key.Public)
	if err != nil {
		return nil, drop(fmt.Errorf("tsa unit %s: issue certificate: %w", cfg.Name, err))
	}
	now := cfg.Now().UTC()
	if err := st.CreateTSAUnit(ctx, &store.TSAUnit{Name: cfg.Name, KeyID: key.ID, Cert: cert.Raw, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, drop(fmt.Errorf("tsa unit %s: %w", cfg.Name, err))
	}
	cfg.Logger.InfoContext(ctx, "TSA unit created", "unit", cfg.Name, "key", key.ID, "subject", cert.Subject.String(),
		"not_after", cert.NotAfter)
	return &Unit{Signer: signer, Cert: cert}, nil
}
