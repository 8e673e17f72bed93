package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
)

// InitResult says what Init did.
type InitResult struct {
	Root, Issuing, OCSP *x509.Certificate
	// Created lists the authorities made by this call; empty when
	// everything was already set up.
	Created []string
}

// Init creates, when missing, a root CA and an issuing CA with token keys
// in the HSM, and the OCSP responder certificate, then loads them. Running
// it again keeps the existing CAs. An issuing CA adopted from an external
// root (ImportIssuing) is kept as is.
func (a *Authority) Init(ctx context.Context) (*InitResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := &InitResult{}

	root, err := a.loadAuthority(ctx, nameRoot)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	issuing, err := a.loadAuthority(ctx, nameIssuing)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if root == nil && issuing == nil {
		root, err = a.createCA(ctx, nameRoot, OwnerRoot, a.cfg.RootKeyType, a.cfg.RootName, a.cfg.RootValidity, nil)
		if err != nil {
			return nil, err
		}
		res.Created = append(res.Created, nameRoot)
	}
	if issuing == nil {
		if root == nil || root.signer == nil {
			return nil, fmt.Errorf("init: %w: root has no key here to certify an issuing CA", ErrNotInitialised)
		}
		issuing, err = a.createCA(ctx, nameIssuing, OwnerIssuing, a.cfg.IssuingKeyType, a.cfg.IssuingName, a.cfg.IssuingValidity, root)
		if err != nil {
			return nil, err
		}
		res.Created = append(res.Created, nameIssuing)
	}
	a.cur.Store(&state{root: root, issuing: issuing})
	created, err := a.ensureOCSPLocked(ctx)
	if err != nil {
		return nil, err
	}
	if created {
		res.Created = append(res.Created, nameOCSP)
	}
	s := a.cur.Load()
	res.Root, res.Issuing, res.OCSP = s.root.cert, s.issuing.cert, s.ocsp.cert
	if len(res.Created) > 0 {
		a.log.Info("certificate authority set up", "created", res.Created,
			"root", s.root.cert.Subject.String(), "issuing", s.issuing.cert.Subject.String())
	}
	if err := a.refreshCRLsLocked(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// Load reads the CAs from the store, renewing the OCSP responder
// certificate if it is missing or past two thirds of its life, and makes
// sure a current CRL is published. It returns ErrNotInitialised if there
// is no issuing CA.
func (a *Authority) Load(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.loadLocked(ctx)
}

func (a *Authority) loadLocked(ctx context.Context) error {
	issuing, err := a.loadAuthority(ctx, nameIssuing)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("load ca: %w", ErrNotInitialised)
	}
	if err != nil {
		return err
	}
	root, err := a.loadAuthority(ctx, nameRoot)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	a.cur.Store(&state{root: root, issuing: issuing})
	if _, err := a.ensureOCSPLocked(ctx); err != nil {
		return err
	}
	for _, name := range a.crlIssuers() {
		crl, err := a.st.LatestCRL(ctx, name)
		if err == nil && time.Until(crl.NextUpdate) > a.cfg.CRLValidity-a.cfg.CRLInterval {
			continue
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := a.generateCRLLocked(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// loaded returns the loaded CAs, first trying to load them if this
// process started before 'firmactl init' set them up, so firmad need not
// be restarted after it.
func (a *Authority) loaded(ctx context.Context) *state {
	if s := a.cur.Load(); s.issuing != nil {
		return s
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.cur.Load(); s.issuing != nil {
		return s
	}
	if err := a.loadLocked(ctx); err != nil && !errors.Is(err, ErrNotInitialised) {
		a.log.Error("cannot load certificate authority", "err", err)
	}
	return a.cur.Load()
}

// loadAuthority reads one authority and, if its key is here, a signer.
func (a *Authority) loadAuthority(ctx context.Context, name string) (*authority, error) {
	rec, err := a.st.Authority(ctx, name)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("authority %s: stored certificate: %w", name, err)
	}
	au := &authority{rec: rec, cert: cert}
	if rec.KeyID != "" {
		s, err := a.keys.Signer(ctx, rec.KeyID)
		if err != nil {
			return nil, fmt.Errorf("authority %s: %w", name, err)
		}
		au.signer = s
	}
	return au, nil
}

// createCA makes a token key and a CA certificate for it, self-signed when
// parent is nil.
func (a *Authority) createCA(ctx context.Context, name, owner string, t keystore.Type, cn string, d time.Duration, parent *authority) (*authority, error) {
	key, err := a.generate(ctx, owner, t, keystore.ModeToken, name+"-ca")
	if err != nil {
		return nil, fmt.Errorf("create %s ca: %w", name, err)
	}
	signer, err := a.keys.Signer(ctx, key.ID)
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("create %s ca: %w", name, err))
	}
	pathLen := 0
	var parentCert *x509.Certificate
	var parentSigner crypto.Signer = signer
	if parent == nil {
		pathLen = 1
	} else {
		parentCert, parentSigner = parent.cert, parent.signer
	}
	tmpl, err := a.caTemplate(cn, key.Public, d, parentCert, pathLen)
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("create %s ca: %w", name, err))
	}
	if parentCert == nil {
		parentCert = tmpl
	}
	signerID := key.ID
	if parent != nil {
		signerID = parent.rec.KeyID
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public, parentSigner)
	if err != nil {
		a.signFailed(ctx, signerID, "certificate", err)
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("create %s ca: sign: %w", name, err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("create %s ca: %w", name, err))
	}
	serial := serialHex(cert.SerialNumber)
	if err := a.record(ctx, keyUsed(signerID, "certificate", der, map[string]string{"serial": hexSerial(serial), "subject_key_id": key.ID})); err != nil {
		return nil, a.dropKey(ctx, key.ID, err)
	}
	if err := a.certificateEvent(ctx, audit.CertificateIssued, "", key.ID, "", der, serial, name, map[string]string{"profile": name + "-ca"}); err != nil {
		return nil, a.dropKey(ctx, key.ID, err)
	}
	now := time.Now().UTC()
	rec := &store.Authority{Name: name, KeyID: key.ID, Cert: der, CreatedAt: now, UpdatedAt: now}
	if err := a.st.CreateAuthority(ctx, rec); err != nil {
		// Another replica may have won the race; its CA stands.
		return nil, a.dropKey(ctx, key.ID, fmt.Errorf("create %s ca: %w", name, err))
	}
	a.m.issued.WithLabelValues(name).Inc()
	return &authority{rec: rec, cert: cert, signer: signer}, nil
}

// dropKey destroys a key made for something that then failed, so no
// unrecorded private key stays in the HSM, and returns err.
func (a *Authority) dropKey(ctx context.Context, id string, err error) error {
	a.destroyKey(context.WithoutCancel(ctx), id, "", "operation failed")
	return err
}

// ensureOCSPLocked issues a responder certificate when there is none or
// the current one has less than a third of its life left. It reports
// whether it issued one.
func (a *Authority) ensureOCSPLocked(ctx context.Context) (bool, error) {
	s := a.cur.Load()
	if s.issuing == nil || s.issuing.signer == nil {
		return false, nil
	}
	cur, err := a.loadAuthority(ctx, nameOCSP)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if cur != nil && cur.cert.CheckSignatureFrom(s.issuing.cert) == nil {
		life := cur.cert.NotAfter.Sub(cur.cert.NotBefore)
		if time.Until(cur.cert.NotAfter) > life/3 {
			a.cur.Store(&state{root: s.root, issuing: s.issuing, ocsp: cur})
			return false, nil
		}
	}
	key, err := a.generate(ctx, OwnerOCSP, keystore.ECP256, keystore.ModeToken, "ocsp-responder")
	if err != nil {
		return false, fmt.Errorf("ocsp responder: %w", err)
	}
	signer, err := a.keys.Signer(ctx, key.ID)
	if err != nil {
		return false, a.dropKey(ctx, key.ID, fmt.Errorf("ocsp responder: %w", err))
	}
	tmpl, err := a.ocspTemplate(key.Public, s.issuing.cert)
	if err != nil {
		return false, a.dropKey(ctx, key.ID, fmt.Errorf("ocsp responder: %w", err))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.issuing.cert, key.Public, s.issuing.signer)
	if err != nil {
		a.signFailed(ctx, s.issuing.rec.KeyID, "certificate", err)
		return false, a.dropKey(ctx, key.ID, fmt.Errorf("ocsp responder: sign: %w", err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return false, a.dropKey(ctx, key.ID, fmt.Errorf("ocsp responder: %w", err))
	}
	serial := serialHex(cert.SerialNumber)
	if err := a.record(ctx, keyUsed(s.issuing.rec.KeyID, "certificate", der, map[string]string{"serial": hexSerial(serial), "subject_key_id": key.ID})); err != nil {
		return false, a.dropKey(ctx, key.ID, err)
	}
	if err := a.certificateEvent(ctx, audit.CertificateIssued, "", key.ID, "", der, serial, nameIssuing, map[string]string{"profile": "ocsp-responder"}); err != nil {
		return false, a.dropKey(ctx, key.ID, err)
	}
	now := time.Now().UTC()
	rec := &store.Authority{Name: nameOCSP, KeyID: key.ID, Cert: der, CreatedAt: now, UpdatedAt: now}
	if cur == nil {
		err = a.st.CreateAuthority(ctx, rec)
	} else {
		err = a.st.ReplaceAuthority(ctx, rec)
	}
	if err != nil {
		return false, a.dropKey(ctx, key.ID, fmt.Errorf("ocsp responder: %w", err))
	}
	if cur != nil && cur.rec.KeyID != "" {
		// Responses signed by the old key stay verifiable with the
		// certificate they carry; the key itself is no longer needed.
		a.destroyKey(ctx, cur.rec.KeyID, "", "ocsp responder rollover")
	}
	a.cur.Store(&state{root: s.root, issuing: s.issuing, ocsp: &authority{rec: rec, cert: cert, signer: signer}})
	a.cache.clear()
	a.m.issued.WithLabelValues(nameOCSP).Inc()
	a.log.Info("ocsp responder certificate issued", "serial", serialHex(cert.SerialNumber), "not_after", cert.NotAfter)
	return true, nil
}

// IssuingCSR makes a token key for an issuing CA to be certified by an
// external root and returns the DER CSR for it, signed by that key.
// Import the certificate the external CA returns with ImportIssuing.
func (a *Authority) IssuingCSR(ctx context.Context) ([]byte, *keystore.Key, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.st.Authority(ctx, nameIssuing); err == nil {
		return nil, nil, fmt.Errorf("issuing csr: %w", ErrAlreadyInitialised)
	}
	key, err := a.generate(ctx, OwnerIssuing, a.cfg.IssuingKeyType, keystore.ModeToken, "issuing-ca")
	if err != nil {
		return nil, nil, fmt.Errorf("issuing csr: %w", err)
	}
	signer, err := a.keys.Signer(ctx, key.ID)
	if err != nil {
		return nil, nil, a.dropKey(ctx, key.ID, fmt.Errorf("issuing csr: %w", err))
	}
	subj, err := a.caSubject(a.cfg.IssuingName)
	if err != nil {
		return nil, nil, a.dropKey(ctx, key.ID, fmt.Errorf("issuing csr: %w", err))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: subj}, signer)
	if err != nil {
		a.signFailed(ctx, key.ID, "csr", err)
		return nil, nil, a.dropKey(ctx, key.ID, fmt.Errorf("issuing csr: sign: %w", err))
	}
	if err := a.record(ctx, keyUsed(key.ID, "csr", der, nil)); err != nil {
		return nil, nil, a.dropKey(ctx, key.ID, err)
	}
	return der, key, nil
}

// ImportIssuing adopts cert, issued by an external root, as the issuing CA.
// Its public key must be that of a live issuing key in the HSM (made by
// IssuingCSR, or any token key of owner OwnerIssuing); root, if given, is
// the external root that signed it and is published with it.
func (a *Authority) ImportIssuing(ctx context.Context, certDER, rootDER []byte) (*x509.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("import issuing ca: %w: %v", ErrBadCertificate, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("import issuing ca: %w: not a CA certificate with keyCertSign and cRLSign", ErrBadCertificate)
	}
	if now := time.Now(); now.After(cert.NotAfter) || now.Before(cert.NotBefore.Add(-clockSkew)) {
		return nil, fmt.Errorf("import issuing ca: %w: not valid now (%s to %s)", ErrBadCertificate, cert.NotBefore, cert.NotAfter)
	}
	var root *x509.Certificate
	if len(rootDER) > 0 {
		if root, err = x509.ParseCertificate(rootDER); err != nil {
			return nil, fmt.Errorf("import issuing ca: root: %w: %v", ErrBadCertificate, err)
		}
		if err := cert.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("import issuing ca: %w: not signed by the given root: %v", ErrBadCertificate, err)
		}
	}
	if _, err := a.st.Authority(ctx, nameIssuing); err == nil {
		return nil, fmt.Errorf("import issuing ca: %w", ErrAlreadyInitialised)
	}
	key, err := a.findKey(ctx, OwnerIssuing, cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("import issuing ca: %w", err)
	}
	if err := a.certificateEvent(ctx, audit.CertificateIssued, "", key.ID, "", certDER, serialHex(cert.SerialNumber), "external",
		map[string]string{"profile": "issuing-ca", "imported": "true"}); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if root != nil {
		if err := a.st.CreateAuthority(ctx, &store.Authority{Name: nameRoot, Cert: rootDER, External: true, CreatedAt: now, UpdatedAt: now}); err != nil {
			return nil, fmt.Errorf("import issuing ca: root: %w", err)
		}
	}
	if err := a.st.CreateAuthority(ctx, &store.Authority{Name: nameIssuing, KeyID: key.ID, Cert: certDER, External: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, fmt.Errorf("import issuing ca: %w", err)
	}
	if err := a.loadLocked(ctx); err != nil {
		return nil, err
	}
	a.log.Info("external issuing ca imported", "subject", cert.Subject.String(), "key", key.ID)
	return cert, nil
}

// findKey returns the live key of owner whose public key is pub.
func (a *Authority) findKey(ctx context.Context, owner string, pub crypto.PublicKey) (*keystore.Key, error) {
	after := ""
	for {
		keys, err := a.keys.Keys(ctx, owner, after, 100)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.DestroyedAt.IsZero() && samePublicKey(k.Public, pub) {
				return k, nil
			}
		}
		if len(keys) < 100 {
			return nil, fmt.Errorf("%w: no live key of %s in the HSM has this public key", ErrKeyMismatch, owner)
		}
		after = keys[len(keys)-1].ID
	}
}
