package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store"
)

// requestExternal makes a key for c and a CSR signed by it, stored as a
// pending certificate.
func (a *Authority) requestExternal(ctx context.Context, c *store.Citizen) (*Certificate, error) {
	subj, _, err := citizenSubject(c)
	if err != nil {
		return nil, err
	}
	key, err := a.generate(ctx, c.ID, a.cfg.CitizenKeyType, "", "citizen-certificate")
	if err != nil {
		return nil, fmt.Errorf("csr for %s: %w", c.ID, err)
	}
	signer, err := a.keys.Signer(ctx, key.ID)
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("csr for %s: %w", c.ID, err))
	}
	tmpl := &x509.CertificateRequest{RawSubject: subj}
	if c.Email != "" {
		tmpl.EmailAddresses = []string{c.Email}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		a.signFailed(ctx, key.ID, "csr", err)
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("csr for %s: sign: %w", c.ID, err))
	}
	if err := a.record(ctx, keyUsed(key.ID, "csr", csr, nil)); err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("csr for %s: %w", c.ID, err))
	}
	id, err := newID()
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("csr for %s: %w", c.ID, err))
	}
	rec := &store.Certificate{ID: id, Owner: c.ID, KeyID: key.ID, Issuer: issuerExternal, Status: store.CertPending,
		CSR: csr, CreatedAt: time.Now().UTC()}
	if err := a.st.CreateCertificate(ctx, rec); err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("csr for %s: %w", c.ID, err))
	}
	a.log.Info("certificate request made for external ca", "citizen", c.ID, "id", id, "key", key.ID)
	return fromRecord(rec)
}

// CSR returns the pending certificate request of a citizen in external
// mode, making the key and CSR if the citizen has neither a valid
// certificate nor a pending request.
func (a *Authority) CSR(ctx context.Context, citizenID string) (*Certificate, error) {
	if a.cfg.Mode != ModeExternal {
		return nil, fmt.Errorf("csr: %w: citizen certificates are issued here, not by an external CA", ErrWrongMode)
	}
	citizenID = normaliseID(citizenID)
	c, err := a.citizen(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	citizenID = c.ID // the registry's canonical spelling
	unlock := a.owners.lock(citizenID)
	defer unlock()
	_, pending, err := a.current(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	if pending != nil {
		return pending, nil
	}
	return a.requestExternal(ctx, c)
}

// Import completes a pending request with the certificate an external CA
// issued for it. The certificate must certify the pending request's HSM
// key, name the same citizen in its serialNumber, be valid now, be an
// end-entity signing certificate and, when ExternalIssuers is configured,
// be signed by one of them. A valid certificate the citizen already had
// is revoked (superseded) and its key destroyed.
func (a *Authority) Import(ctx context.Context, der []byte) (*Certificate, error) {
	if a.cfg.Mode != ModeExternal {
		return nil, fmt.Errorf("import: %w: citizen certificates are issued here, not by an external CA", ErrWrongMode)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("import: %w: %v", ErrBadCertificate, err)
	}
	sn := subjectSerial(cert)
	owner := ""
	if len(sn) > len("IDCES-") && sn[:len("IDCES-")] == "IDCES-" {
		owner = normaliseID(sn[len("IDCES-"):])
	}
	if owner == "" {
		return nil, fmt.Errorf("import: %w: subject serialNumber %q is not IDCES-<DNI/NIE>", ErrBadCertificate, sn)
	}
	if err := a.checkExternal(cert); err != nil {
		return nil, err
	}
	// The citizen may have lost the advanced level since the request.
	c, err := a.citizen(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	owner = c.ID
	unlock := a.owners.lock(owner)
	defer unlock()
	valid, pending, err := a.current(ctx, owner)
	if err != nil {
		return nil, err
	}
	if pending == nil {
		return nil, fmt.Errorf("import for %s: %w: no pending certificate request", owner, ErrNotFound)
	}
	key, err := a.keys.Key(ctx, pending.KeyID)
	if err != nil {
		return nil, fmt.Errorf("import for %s: %w", owner, err)
	}
	if !samePublicKey(key.Public, cert.PublicKey) {
		return nil, fmt.Errorf("import for %s: %w: key %s", owner, ErrKeyMismatch, pending.KeyID)
	}
	rec := &store.Certificate{ID: pending.ID, Owner: owner, KeyID: pending.KeyID, Serial: serialHex(cert.SerialNumber),
		Issuer: issuerExternal, Status: store.CertValid, Cert: der, CSR: pending.CSR,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, CreatedAt: pending.CreatedAt}
	ev, extra := audit.CertificateIssued, map[string]string{"not_after": cert.NotAfter.Format(time.RFC3339), "imported": "true"}
	if valid != nil {
		ev, extra["replaces"] = audit.CertificateRenewed, valid.ID
	}
	if err := a.certificateEvent(ctx, ev, owner, rec.KeyID, rec.ID, der, rec.Serial, issuerExternal, extra); err != nil {
		return nil, fmt.Errorf("import for %s: %w", owner, err)
	}
	if err := a.replace(ctx, valid, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("import for %s: %w: serial %s already imported", owner, ErrBadCertificate, rec.Serial)
		}
		return nil, fmt.Errorf("import for %s: %w", owner, err)
	}
	a.m.issued.WithLabelValues("external").Inc()
	a.log.Info("external certificate imported", "citizen", owner, "id", rec.ID, "serial", rec.Serial,
		"issuer", cert.Issuer.String())
	return fromRecord(rec)
}

func (a *Authority) checkExternal(cert *x509.Certificate) error {
	now := time.Now()
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore.Add(-clockSkew)) {
		return fmt.Errorf("import: %w: not valid now (%s to %s)", ErrBadCertificate, cert.NotBefore, cert.NotAfter)
	}
	if cert.IsCA {
		return fmt.Errorf("import: %w: a CA certificate, want an end-entity one", ErrBadCertificate)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return fmt.Errorf("import: %w: key usage allows neither digitalSignature nor nonRepudiation", ErrBadCertificate)
	}
	if len(a.cfg.ExternalIssuers) == 0 {
		return nil
	}
	for _, is := range a.cfg.ExternalIssuers {
		if cert.CheckSignatureFrom(is) == nil {
			return nil
		}
	}
	return fmt.Errorf("import: %w: not signed by a configured external issuer (issuer %s)", ErrBadCertificate, cert.Issuer.String())
}
