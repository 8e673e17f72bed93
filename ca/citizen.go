package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/store"
)

// Certificate is a citizen's certificate as callers see it.
type Certificate struct {
	ID        string
	Owner     string // DNI/NIE
	KeyID     string // keystore key ID of the private key
	Serial    string // lower-case hex; empty while pending
	Issuer    string // "issuing", or "external"
	Status    string // pending, valid, revoked, expired
	NotBefore time.Time
	NotAfter  time.Time
	CreatedAt time.Time
	RevokedAt time.Time
	Reason    Reason
	// SupersededBy is the ID of the certificate that replaced this one.
	SupersededBy string
	DER          []byte            // nil while pending
	CSR          []byte            // external mode
	Cert         *x509.Certificate // parsed DER; nil while pending
}

func fromRecord(r *store.Certificate) (*Certificate, error) {
	c := &Certificate{ID: r.ID, Owner: r.Owner, KeyID: r.KeyID, Serial: r.Serial, Issuer: r.Issuer, Status: r.Status,
		NotBefore: r.NotBefore, NotAfter: r.NotAfter, CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt,
		Reason: Reason(r.Reason), SupersededBy: r.SupersededBy, DER: r.Cert, CSR: r.CSR}
	if len(r.Cert) > 0 {
		cert, err := x509.ParseCertificate(r.Cert)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: stored DER: %w", r.ID, err)
		}
		c.Cert = cert
	}
	return c, nil
}

func newID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "crt-" + hex.EncodeToString(b), nil
}

// citizen fetches a citizen and applies the signing policy: only active
// citizens of the advanced level get certificates.
func (a *Authority) citizen(ctx context.Context, id string) (*store.Citizen, error) {
	if a.citizens == nil {
		// A wiring mistake, not the caller's: it must not look like an
		// unknown citizen.
		return nil, fmt.Errorf("citizen %s: no citizen registry wired to the CA", id)
	}
	c, err := a.citizens.Citizen(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrUnknownCitizen) {
		return nil, fmt.Errorf("%w: %w", ErrUnknownCitizen, err)
	}
	if err != nil {
		return nil, fmt.Errorf("citizen %s: %w", id, err)
	}
	if err := policy.MaySign(policy.Level(c.Level), c.Status); err != nil {
		var r *policy.Refusal
		if errors.As(err, &r) && r.Rule == policy.RuleAdvancedRequired {
			return nil, fmt.Errorf("certificate for %s: %w: %w", c.ID, ErrNotAdvanced, err)
		}
		return nil, fmt.Errorf("certificate for %s: %w: %w", c.ID, ErrInactive, err)
	}
	return c, nil
}

// current returns the owner's valid certificate, or nil. A valid one that
// has expired is marked expired and its key destroyed, so it never signs.
func (a *Authority) current(ctx context.Context, owner string) (*Certificate, *Certificate, error) {
	var valid, pending *Certificate
	for _, status := range []string{store.CertValid, store.CertPending} {
		recs, err := a.st.Certificates(ctx, store.CertificateFilter{Owner: owner, Status: status, Limit: 2})
		if err != nil {
			return nil, nil, err
		}
		if len(recs) == 0 {
			continue
		}
		c, err := fromRecord(recs[0])
		if err != nil {
			return nil, nil, err
		}
		if status == store.CertPending {
			pending = c
			continue
		}
		if time.Now().After(c.NotAfter) {
			if err := a.st.ExpireCertificate(ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, nil, err
			}
			a.destroyKey(ctx, c.KeyID, c.Owner, "certificate expired")
			continue
		}
		valid = c
	}
	return valid, pending, nil
}

// EnsureCertificate returns the citizen's valid certificate, issuing one
// with a new HSM key on first use. Basic-level citizens are refused with
// ErrNotAdvanced. In external mode it makes the key and CSR on first use
// and returns ErrPending until the certificate is imported.
func (a *Authority) EnsureCertificate(ctx context.Context, citizenID string) (*Certificate, error) {
	citizenID = normaliseID(citizenID)
	c, err := a.citizen(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	citizenID = c.ID // the registry's canonical spelling
	unlock := a.owners.lock(citizenID)
	defer unlock()
	valid, pending, err := a.current(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	if valid != nil {
		return valid, nil
	}
	if a.cfg.Mode == ModeExternal {
		if pending != nil {
			return pending, fmt.Errorf("certificate for %s: %w", citizenID, ErrPending)
		}
		p, err := a.requestExternal(ctx, c)
		if err != nil {
			return nil, err
		}
		return p, fmt.Errorf("certificate for %s: %w", citizenID, ErrPending)
	}
	cert, err := a.issue(ctx, c, nil)
	if errors.Is(err, store.ErrConflict) {
		// Another replica issued first: use its certificate.
		valid, _, err2 := a.current(ctx, citizenID)
		if err2 == nil && valid != nil {
			return valid, nil
		}
	}
	return cert, err
}

// Issue issues a certificate for the citizen, who must have none valid.
func (a *Authority) Issue(ctx context.Context, citizenID string) (*Certificate, error) {
	citizenID = normaliseID(citizenID)
	c, err := a.citizen(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	citizenID = c.ID // the registry's canonical spelling
	if a.cfg.Mode == ModeExternal {
		return nil, fmt.Errorf("issue: %w: request a CSR instead", ErrWrongMode)
	}
	unlock := a.owners.lock(citizenID)
	defer unlock()
	valid, _, err := a.current(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	if valid != nil {
		return nil, fmt.Errorf("issue for %s: %w: %s; renew it instead", citizenID, ErrExists, valid.ID)
	}
	return a.issue(ctx, c, nil)
}

// Renew gives the citizen a new key and certificate and revokes the valid
// one (reason superseded), destroying its key. In external mode it makes
// the new key and CSR; the old certificate is revoked when the new one is
// imported.
func (a *Authority) Renew(ctx context.Context, citizenID string) (*Certificate, error) {
	citizenID = normaliseID(citizenID)
	c, err := a.citizen(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	citizenID = c.ID // the registry's canonical spelling
	unlock := a.owners.lock(citizenID)
	defer unlock()
	valid, pending, err := a.current(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	if a.cfg.Mode == ModeExternal {
		if pending != nil {
			return pending, fmt.Errorf("renew %s: %w", citizenID, ErrPending)
		}
		return a.requestExternal(ctx, c)
	}
	return a.issue(ctx, c, valid)
}

// issue makes a key and certificate for c, replacing prev if not nil.
func (a *Authority) issue(ctx context.Context, c *store.Citizen, prev *Certificate) (*Certificate, error) {
	s := a.loaded(ctx)
	if s.issuing == nil || s.issuing.signer == nil {
		return nil, fmt.Errorf("issue for %s: %w", c.ID, ErrNotInitialised)
	}
	if a.cfg.BaseURL == "" {
		return nil, fmt.Errorf("issue for %s: %w: no public base URL configured for CRL and OCSP", c.ID, ErrNotInitialised)
	}
	key, err := a.generate(ctx, c.ID, a.cfg.CitizenKeyType, "", "citizen-certificate")
	if err != nil {
		return nil, fmt.Errorf("issue for %s: %w", c.ID, err)
	}
	tmpl, err := a.citizenTemplate(c, key.Public, s.issuing.cert)
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: %w", c.ID, err))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.issuing.cert, key.Public, s.issuing.signer)
	if err != nil {
		a.m.errors.WithLabelValues("issue").Inc()
		a.signFailed(ctx, s.issuing.rec.KeyID, "certificate", err)
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: sign: %w", c.ID, err))
	}
	cert, err := x509.ParseCertificate(der)
	if err == nil {
		// The HSM's signature is checked before the certificate is
		// recorded, so a faulty token never yields a stored bad one.
		err = cert.CheckSignatureFrom(s.issuing.cert)
	}
	if err != nil {
		a.m.errors.WithLabelValues("issue").Inc()
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: check: %w", c.ID, err))
	}
	id, err := newID()
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: %w", c.ID, err))
	}
	rec := &store.Certificate{ID: id, Owner: c.ID, KeyID: key.ID, Serial: serialHex(cert.SerialNumber), Issuer: nameIssuing,
		Status: store.CertValid, Cert: der, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, CreatedAt: time.Now().UTC()}
	// Recorded before the certificate is stored or handed out: if the
	// audit log cannot take it, the certificate is dropped with its key.
	if err := a.record(ctx, keyUsed(s.issuing.rec.KeyID, "certificate", der, map[string]string{"serial": hexSerial(rec.Serial), "subject_key_id": key.ID})); err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: %w", c.ID, err))
	}
	ev, extra := audit.CertificateIssued, map[string]string{"not_after": cert.NotAfter.Format(time.RFC3339)}
	if prev != nil {
		ev, extra["replaces"] = audit.CertificateRenewed, prev.ID
	}
	if err := a.certificateEvent(ctx, ev, c.ID, key.ID, id, der, rec.Serial, nameIssuing, extra); err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: %w", c.ID, err))
	}
	if err := a.replace(ctx, prev, rec); err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("issue for %s: %w", c.ID, err))
	}
	a.m.issued.WithLabelValues("citizen").Inc()
	a.log.Info("citizen certificate issued", "citizen", c.ID, "id", id, "serial", rec.Serial, "key", key.ID,
		"not_after", cert.NotAfter, "replaces", prevID(prev))
	return fromRecord(rec)
}

func prevID(p *Certificate) string {
	if p == nil {
		return ""
	}
	return p.ID
}

// replace stores next as valid, and if prev is set revokes it as
// superseded, destroys its key and publishes a new CRL.
func (a *Authority) replace(ctx context.Context, prev *Certificate, next *store.Certificate) error {
	if prev == nil {
		return a.st.ReplaceCertificate(ctx, "", next, time.Time{}, 0)
	}
	if err := a.revocationEvent(ctx, prev, ReasonSuperseded); err != nil {
		return err
	}
	now := time.Now().UTC()
	if err := a.st.ReplaceCertificate(ctx, prev.ID, next, now, int(ReasonSuperseded)); err != nil {
		return err
	}
	a.afterRevoke(ctx, prev, ReasonSuperseded)
	return nil
}

// afterRevoke destroys the revoked certificate's key and republishes.
// The revocation is already recorded, so failures here are logged, not
// returned: the certificate stays revoked and Revoke can be retried to
// destroy the key.
func (a *Authority) afterRevoke(ctx context.Context, c *Certificate, reason Reason) {
	ctx = context.WithoutCancel(ctx)
	a.m.revoked.WithLabelValues(reason.String()).Inc()
	a.destroyKey(ctx, c.KeyID, c.Owner, "certificate revoked: "+reason.String())
	a.cache.clear()
	a.log.Info("citizen certificate revoked", "citizen", c.Owner, "id", c.ID, "serial", c.Serial, "reason", reason.String())
	if c.Issuer == nameIssuing {
		a.mu.Lock()
		_, err := a.generateCRLLocked(ctx, nameIssuing)
		a.mu.Unlock()
		if err != nil {
			a.log.Error("cannot publish crl after revocation", "err", err)
		}
	}
}

// destroyKey destroys a key in the HSM under audit.ChangeKey (recorded
// first, refused when that cannot be); citizen may be empty for a system
// key. A key already gone is not an error. Failures are logged and
// recorded, not returned: the certificate is already out of use, and
// destroying again (Revoke) retries.
func (a *Authority) destroyKey(ctx context.Context, id, citizen, why string) {
	if k, err := a.keys.Key(ctx, id); err == nil && !k.DestroyedAt.IsZero() {
		return // gone already: nothing to change, nothing to record
	}
	_, err := a.changeKey(ctx, audit.KeyChange{Destroy: true, KeyID: id, Citizen: citizen, Details: map[string]string{"reason": why}},
		func(ctx context.Context) (string, error) { return id, a.keys.Destroy(ctx, id) })
	switch {
	case errors.Is(err, keystore.ErrKeyDestroyed):
	case err != nil:
		a.m.errors.WithLabelValues("destroy").Inc()
		a.log.Error("cannot destroy key", "key", id, "reason", why, "err", err)
	}
}

// Revoke revokes a certificate, given its ID or serial, with an RFC 5280
// reason, and destroys its private key in the HSM. A certificate already
// revoked returns ErrAlreadyRevoked (after making sure its key is gone).
func (a *Authority) Revoke(ctx context.Context, ref string, reason Reason) (*Certificate, error) {
	if err := reason.check(); err != nil {
		return nil, err
	}
	c, err := a.Certificate(ctx, ref)
	if err != nil {
		return nil, err
	}
	unlock := a.owners.lock(c.Owner)
	defer unlock()
	return a.revokeLocked(ctx, c.ID, reason)
}

func (a *Authority) revokeLocked(ctx context.Context, id string, reason Reason) (*Certificate, error) {
	rec, err := a.st.Certificate(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := fromRecord(rec)
	if err != nil {
		return nil, err
	}
	if c.Status == store.CertRevoked || c.Status == store.CertExpired {
		a.destroyKey(ctx, c.KeyID, c.Owner, "certificate "+c.Status)
		return c, fmt.Errorf("revoke %s: %w (%s)", c.ID, ErrAlreadyRevoked, c.Status)
	}
	if err := a.revocationEvent(ctx, c, reason); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", c.ID, err)
	}
	now := time.Now().UTC()
	if err := a.st.RevokeCertificate(ctx, c.ID, now, int(reason)); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", c.ID, err)
	}
	c.Status, c.RevokedAt, c.Reason = store.CertRevoked, now, reason
	a.afterRevoke(ctx, c, reason)
	return c, nil
}

// RevokeCitizen revokes every live (valid or pending) certificate of a
// citizen and destroys their keys; the registry calls it when a citizen
// loses the advanced level (ReasonPrivilegeWithdrawn) or is removed
// (ReasonCessationOfOperation). It returns the revoked certificates.
func (a *Authority) RevokeCitizen(ctx context.Context, citizenID string, reason Reason) ([]*Certificate, error) {
	if err := reason.check(); err != nil {
		return nil, err
	}
	citizenID = normaliseID(citizenID)
	unlock := a.owners.lock(citizenID)
	defer unlock()
	var out []*Certificate
	for _, status := range []string{store.CertValid, store.CertPending} {
		recs, err := a.st.Certificates(ctx, store.CertificateFilter{Owner: citizenID, Status: status})
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			c, err := a.revokeLocked(ctx, r.ID, reason)
			if err != nil && !errors.Is(err, ErrAlreadyRevoked) {
				return out, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Certificate returns a certificate by ID or by serial (hex).
func (a *Authority) Certificate(ctx context.Context, ref string) (*Certificate, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, fmt.Errorf("certificate: %w: empty reference", ErrNotFound)
	}
	rec, err := a.st.Certificate(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		// Serials as people copy them: openssl's colon-separated or 0x
		// forms, any case, leading zeros.
		serial := strings.ToLower(strings.ReplaceAll(ref, ":", ""))
		serial = strings.TrimLeft(strings.TrimPrefix(serial, "0x"), "0")
		for _, issuer := range []string{nameIssuing, issuerExternal} {
			rec, err = a.st.CertificateBySerial(ctx, issuer, serial)
			if !errors.Is(err, store.ErrNotFound) {
				break
			}
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("certificate %s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return fromRecord(rec)
}

// ListOptions selects certificates to list.
type ListOptions struct {
	Citizen string // DNI/NIE; empty for all
	Status  string // pending, valid, revoked, expired; empty for all
	After   string // page token: the last ID of the previous page
	Limit   int    // default 100, at most 1000
}

// Certificates lists certificates ordered by ID.
func (a *Authority) Certificates(ctx context.Context, o ListOptions) ([]*Certificate, error) {
	switch o.Status {
	case "", store.CertPending, store.CertValid, store.CertRevoked, store.CertExpired:
	default:
		return nil, fmt.Errorf("list certificates: status %q: want pending, valid, revoked or expired", o.Status)
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	o.Limit = min(o.Limit, 1000)
	recs, err := a.st.Certificates(ctx, store.CertificateFilter{Owner: normaliseID(o.Citizen), Status: o.Status, After: o.After, Limit: o.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]*Certificate, 0, len(recs))
	for _, r := range recs {
		c, err := fromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// normaliseID upper-cases a DNI/NIE and drops spaces, dots and dashes,
// as the registry does, for the forms people type it in.
func normaliseID(id string) string {
	return strings.ToUpper(strings.NewReplacer(" ", "", "-", "", ".", "").Replace(strings.TrimSpace(id)))
}
