package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/firma-cloud/firma/store"
)

// crlIssuers lists the authorities whose CRLs this service signs: the
// issuing CA always, the root when its key is here.
func (a *Authority) crlIssuers() []string {
	s := a.cur.Load()
	var out []string
	if s.issuing != nil && s.issuing.signer != nil {
		out = append(out, nameIssuing)
	}
	if s.root != nil && s.root.signer != nil {
		out = append(out, nameRoot)
	}
	return out
}

// RefreshCRLs signs and publishes a new CRL for each CA whose key is here.
func (a *Authority) RefreshCRLs(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refreshCRLsLocked(ctx)
}

func (a *Authority) refreshCRLsLocked(ctx context.Context) error {
	var errs []error
	for _, name := range a.crlIssuers() {
		if _, err := a.generateCRLLocked(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// generateCRLLocked signs the CRL of one CA with a fresh CRL number and
// stores it. Revoked certificates stay listed until they expire.
func (a *Authority) generateCRLLocked(ctx context.Context, name string) (*store.CRL, error) {
	s := a.cur.Load()
	au := s.issuing
	if name == nameRoot {
		au = s.root
	}
	if au == nil || au.signer == nil {
		return nil, fmt.Errorf("crl %s: %w", name, ErrNotInitialised)
	}
	now := time.Now().UTC().Truncate(time.Second)
	revoked, err := a.st.RevokedCertificates(ctx, name, now)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", name, err)
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, r := range revoked {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("crl %s: certificate %s: stored serial %q is not hex", name, r.ID, r.Serial)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: r.RevokedAt, ReasonCode: r.Reason})
	}
	number, err := a.st.NextCRLNumber(ctx, name)
	if err != nil {
		return nil, err
	}
	next := now.Add(a.cfg.CRLValidity)
	if next.After(au.cert.NotAfter) {
		next = au.cert.NotAfter
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                now,
		NextUpdate:                next,
		RevokedCertificateEntries: entries,
	}, au.cert, au.signer)
	if err != nil {
		a.m.errors.WithLabelValues("crl").Inc()
		a.signFailed(ctx, au.rec.KeyID, "crl", err)
		return nil, fmt.Errorf("crl %s: sign: %w", name, err)
	}
	if err := a.record(ctx, keyUsed(au.rec.KeyID, "crl", der, map[string]string{"crl_issuer": name, "crl_number": fmt.Sprint(number)})); err != nil {
		return nil, fmt.Errorf("crl %s: %w", name, err)
	}
	crl := &store.CRL{Issuer: name, Number: number, ThisUpdate: now, NextUpdate: next, DER: der}
	if err := a.st.SaveCRL(ctx, crl); err != nil {
		return nil, err
	}
	a.m.crlNumber.WithLabelValues(name).Set(float64(number))
	a.m.crlEntries.WithLabelValues(name).Set(float64(len(entries)))
	a.log.Debug("crl published", "issuer", name, "number", number, "entries", len(entries), "next_update", next)
	return crl, nil
}

// CRL returns the latest published CRL of "issuing" or "root".
func (a *Authority) CRL(ctx context.Context, name string) (*store.CRL, error) {
	if name != nameIssuing && name != nameRoot {
		return nil, fmt.Errorf("crl %s: %w", name, ErrNotFound)
	}
	crl, err := a.st.LatestCRL(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("crl %s: %w", name, ErrNotFound)
	}
	return crl, err
}

// Start runs the scheduled work in the background: a new CRL every
// CRLInterval and the OCSP responder certificate rollover. Stop ends it.
func (a *Authority) Start() {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	if a.stop != nil {
		return
	}
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.run(a.stop, a.done)
}

// Stop ends the background work started by Start and waits for it.
func (a *Authority) Stop() {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	if a.stop == nil {
		return
	}
	close(a.stop)
	<-a.done
	a.stop, a.done = nil, nil
}

func (a *Authority) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(a.cfg.CRLInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.CRLInterval)
			a.mu.Lock()
			if _, err := a.ensureOCSPLocked(ctx); err != nil {
				a.log.Error("ocsp responder rollover failed", "err", err)
			}
			if err := a.refreshCRLsLocked(ctx); err != nil {
				a.log.Error("scheduled crl refresh failed", "err", err)
			}
			a.mu.Unlock()
			cancel()
		}
	}
}
