package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// Subject attribute OIDs that x509.Name does not decode into fields.
var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// Challenge is a random nonce a citizen signs with their certificate's key
// when no TLS client certificate is available (e.g. a desktop signing app).
type Challenge struct {
	ID        string
	Nonce     []byte
	ExpiresAt time.Time
}

// NewChallenge issues a single-use challenge for CertificateProof.
func (r *Service) NewChallenge(ctx context.Context) (*Challenge, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	sum := sha256.Sum256(nonce)
	c := &store.Code{ID: id, Kind: kindChallenge, CitizenID: "", Hash: sum[:], CreatedAt: now, ExpiresAt: now.Add(r.opt.ChallengeTTL)}
	if err := r.st.CreateCode(ctx, c); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	return &Challenge{ID: id, Nonce: nonce, ExpiresAt: c.ExpiresAt}, nil
}

// CertificateProof is how a citizen proves possession of an electronic
// certificate: either the TLS handshake did (FromTLS, Chain from the peer
// certificates), or they signed a challenge's nonce with the certificate's
// key (SHA-256; ECDSA ASN.1, RSA PKCS#1 v1.5 or PSS, or Ed25519).
type CertificateProof struct {
	Chain       []*x509.Certificate // leaf first
	FromTLS     bool
	ChallengeID string
	Nonce       []byte
	Signature   []byte
}

// Pending is a certificate registration waiting for the SMS code.
type Pending struct {
	ID        string
	CitizenID string
	GivenName string
	Surnames  string
	Mobile    string // masked
	ExpiresAt time.Time
}

type pendingData struct {
	ID          string `json:"id"`
	GivenName   string `json:"given_name"`
	Surnames    string `json:"surnames"`
	Mobile      string `json:"mobile"`
	Fingerprint string `json:"cert_sha256"`
}

// StartCertificate is the first step of an electronic-certificate
// registration: it checks the certificate against the trusted CAs, reads
// the holder's DNI/NIE and name from it, and sends a 4-character code by
// SMS to mobile.
func (r *Service) StartCertificate(ctx context.Context, proof CertificateProof, mobile string) (*Pending, error) {
	p, err := r.startCertificate(ctx, proof, mobile)
	return p, r.fail(policy.ElectronicCertificate, err)
}

func (r *Service) startCertificate(ctx context.Context, proof CertificateProof, mobile string) (*Pending, error) {
	leaf, err := r.verifyProof(ctx, proof)
	if err != nil {
		return nil, err
	}
	id, given, surnames, err := holder(leaf)
	if err != nil {
		return nil, err
	}
	if mobile, err = NormalizeMobile("mobile", mobile); err != nil {
		return nil, err
	}
	if c, err := r.st.Citizen(ctx, id); err == nil && c.Status != StatusRemoved {
		if _, err := policy.ChangeLevel(policy.Level(c.Level), policy.ElectronicCertificate); err != nil {
			return nil, err
		}
	}
	// Starting again does not give fresh tries: while wrong codes have
	// locked the citizen's registrations, no SMS is sent.
	if err := r.opt.Attempts.Check(ctx, policy.RegistrationScope(id), r.now().UTC()); err != nil {
		return nil, codeLocked(err)
	}
	code, err := randomCode(readableAlphabet, smsCodeLength)
	if err != nil {
		return nil, err
	}
	pid, err := randomID()
	if err != nil {
		return nil, err
	}
	fp := sha256.Sum256(leaf.Raw)
	data, err := json.Marshal(pendingData{ID: id, GivenName: given, Surnames: surnames, Mobile: mobile, Fingerprint: hex.EncodeToString(fp[:])})
	if err != nil {
		return nil, fmt.Errorf("start certificate registration: %w", err)
	}
	now := r.now().UTC()
	// Keyed by the pending ID, not the citizen: the code confirms this
	// attempt only.
	rec := &store.Code{ID: pid, Kind: kindSMS, CitizenID: id, Hash: codeHash(kindSMS, pid, code), Data: string(data),
		CreatedAt: now, ExpiresAt: now.Add(r.opt.SMSCodeTTL)}
	if err := r.st.CreateCode(ctx, rec); err != nil {
		return nil, fmt.Errorf("start certificate registration: %w", err)
	}
	text := fmt.Sprintf("Cl@ve: your registration code is %s. It expires in %d minutes. Never share it.", code, int(r.opt.SMSCodeTTL.Minutes()))
	if err := r.opt.SMS.Send(ctx, mobile, text); err != nil {
		r.st.UseCode(ctx, pid, now)
		return nil, fmt.Errorf("send registration code: %w", err)
	}
	r.log.InfoContext(ctx, "certificate registration started", "citizen", id, "pending", pid, "issuer", leaf.Issuer.String())
	return &Pending{ID: pid, CitizenID: id, GivenName: given, Surnames: surnames, Mobile: sms.Mask(mobile), ExpiresAt: rec.ExpiresAt}, nil
}

func (r *Service) verifyProof(ctx context.Context, proof CertificateProof) (*x509.Certificate, error) {
	if len(proof.Chain) == 0 || proof.Chain[0] == nil {
		return nil, fieldErr("certificate", "is required: present a client certificate or sign a challenge")
	}
	leaf := proof.Chain[0]
	if r.opt.TrustedCAs == nil {
		return nil, fmt.Errorf("%w: no trusted certificate authorities are configured", ErrUntrusted)
	}
	inter := x509.NewCertPool()
	if r.opt.Intermediates != nil {
		inter = r.opt.Intermediates.Clone()
	}
	for _, c := range proof.Chain[1:] {
		inter.AddCert(c)
	}
	// Any extended key usage: DNIe and FNMT authentication certificates
	// differ in what they list, and the pool is trusted for this purpose
	// by configuration.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: r.opt.TrustedCAs, Intermediates: inter,
		CurrentTime: r.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: %s (issuer %q)", ErrUntrusted, err.Error(), leaf.Issuer.String())
	}
	if proof.FromTLS {
		return leaf, nil
	}
	if proof.ChallengeID == "" || len(proof.Signature) == 0 {
		return nil, fieldErr("signature", "is required: sign the challenge nonce with the certificate's key")
	}
	ch, err := r.st.Code(ctx, proof.ChallengeID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ch.Kind != kindChallenge) {
		return nil, fmt.Errorf("challenge: %w", ErrCodeInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	sum := sha256.Sum256(proof.Nonce)
	if subtle.ConstantTimeCompare(ch.Hash, sum[:]) != 1 {
		return nil, fmt.Errorf("challenge: %w", ErrCodeInvalid)
	}
	if !ch.UsedAt.IsZero() {
		return nil, fmt.Errorf("challenge: %w", ErrCodeUsed)
	}
	if !r.now().Before(ch.ExpiresAt) {
		return nil, fmt.Errorf("challenge: %w", ErrCodeExpired)
	}
	// Spent before the signature is checked, so one nonce is one try.
	if err := r.st.UseCode(ctx, ch.ID, r.now().UTC()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("challenge: %w", ErrCodeUsed)
		}
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if err := checkChallengeSignature(leaf, proof.Nonce, proof.Signature); err != nil {
		return nil, &FieldError{Field: "signature", Reason: "does not verify with the certificate's public key: " + err.Error()}
	}
	return leaf, nil
}

func checkChallengeSignature(cert *x509.Certificate, nonce, sig []byte) error {
	digest := sha256.Sum256(nonce)
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
		if rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil) == nil {
			return nil
		}
		return errors.New("bad RSA signature (PKCS#1 v1.5 or PSS with SHA-256)")
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, nonce, sig) {
			return errors.New("bad Ed25519 signature")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key %T", cert.PublicKey)
}

// holder reads the DNI/NIE and name of a natural-person certificate.
func holder(c *x509.Certificate) (string, string, string, error) {
	serial := c.Subject.SerialNumber
	if serial == "" {
		return "", "", "", fieldErr("certificate", "the subject has no serialNumber with the holder's DNI/NIE")
	}
	id, err := IDFromSerialNumber(serial)
	if err != nil {
		return "", "", "", err
	}
	var given, surnames string
	for _, n := range c.Subject.Names {
		v, ok := n.Value.(string)
		if !ok {
			continue
		}
		switch {
		case n.Type.Equal(oidGivenName):
			given = v
		case n.Type.Equal(oidSurname):
			surnames = v
		}
	}
	// The CN spells the whole name: "SURNAMES, GIVEN (AUTENTICACIÓN)" on
	// the DNIe, whose surname attribute holds only the first surname, and
	// "SURNAMES GIVEN - 12345678Z" on FNMT certificates.
	cnSurnames, cnGiven := cnName(c.Subject.CommonName, given)
	switch {
	case given == "" && surnames == "":
		given, surnames = cnGiven, cnSurnames
	case cnSurnames != "" && len(cnSurnames) > len(surnames) && strings.HasPrefix(cnSurnames, surnames+" "):
		surnames = cnSurnames
	}
	if given, err = NormalizeName("certificate", given); err != nil {
		return "", "", "", fieldErr("certificate", "the subject has no usable givenName")
	}
	if surnames, err = NormalizeName("certificate", surnames); err != nil {
		return "", "", "", fieldErr("certificate", "the subject has no usable surname")
	}
	return id, given, surnames, nil
}

// cnName splits a Spanish certificate CN into surnames and given name.
// given, when known from the givenName attribute, locates the split in
// the comma-less FNMT form.
func cnName(cn, given string) (string, string) {
	if i := strings.Index(cn, " ("); i > 0 {
		cn = cn[:i]
	}
	if i := strings.Index(cn, " - "); i > 0 {
		cn = cn[:i]
	}
	cn = strings.TrimSpace(cn)
	if s, g, ok := strings.Cut(cn, ","); ok {
		return strings.TrimSpace(s), strings.TrimSpace(g)
	}
	if given != "" && strings.HasSuffix(cn, " "+given) {
		return strings.TrimSpace(strings.TrimSuffix(cn, " "+given)), given
	}
	return "", ""
}

// CertificateConfirmation is the last step of an electronic-certificate
// registration.
type CertificateConfirmation struct {
	PendingID        string
	Code             string // from the SMS
	Email            string
	AcceptConditions bool
}

// ConfirmCertificate completes an electronic-certificate registration with
// the SMS code: advanced level and an activation code.
func (r *Service) ConfirmCertificate(ctx context.Context, in CertificateConfirmation) (*Confirmation, error) {
	c, err := r.confirmCertificate(ctx, in)
	return c, r.fail(policy.ElectronicCertificate, err)
}

func (r *Service) confirmCertificate(ctx context.Context, in CertificateConfirmation) (*Confirmation, error) {
	if in.PendingID == "" {
		return nil, fieldErr("pending_id", "is required")
	}
	code := cleanCode(in.Code)
	if len(code) != smsCodeLength {
		return nil, fieldErr("code", "must be the 4 characters received by SMS")
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return nil, err
	}
	if !in.AcceptConditions {
		return nil, ErrConditions
	}
	rec, err := r.st.Code(ctx, in.PendingID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Kind != kindSMS) {
		return nil, fieldErr("pending_id", "no registration is waiting with this id")
	}
	if err != nil {
		return nil, fmt.Errorf("confirm certificate registration: %w", err)
	}
	now := r.now()
	switch {
	case !rec.UsedAt.IsZero():
		return nil, fmt.Errorf("sms code: %w", ErrCodeUsed)
	case !now.Before(rec.ExpiresAt):
		return nil, fmt.Errorf("sms code: %w; start again to get a new one", ErrCodeExpired)
	}
	// The lock, the comparison and the count are one step on the
	// citizen's registration scope; a right code resets it.
	f, err := r.opt.Attempts.Verify(ctx, policy.RegistrationScope(rec.CitizenID), now.UTC(), func() bool {
		return codeMatches(rec.Hash, kindSMS, rec.ID, code)
	})
	if err != nil && !errors.Is(err, policy.ErrWrongCode) {
		return nil, codeLocked(err)
	}
	if err != nil {
		if f.Locked {
			// The code dies with the lock: once it ends, the citizen
			// starts again and gets a new one.
			if err := r.st.UseCode(ctx, rec.ID, now.UTC()); err != nil && !errors.Is(err, store.ErrConflict) {
				r.log.WarnContext(ctx, "locked registration code not voided", "pending", rec.ID, "err", err)
			}
			r.log.WarnContext(ctx, "registration codes locked", "citizen", rec.CitizenID, "until", f.LockedUntil)
			return nil, fmt.Errorf("sms code: %w: %d wrong codes; start again after %s UTC to get a new one",
				ErrTooManyAttempts, f.Failures, f.LockedUntil.UTC().Format("2006-01-02 15:04:05"))
		}
		return nil, fmt.Errorf("sms code: %w (%d attempts left)", ErrCodeInvalid, f.Left)
	}
	if err := r.st.UseCode(ctx, rec.ID, now.UTC()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("sms code: %w", ErrCodeUsed)
		}
		return nil, fmt.Errorf("confirm certificate registration: %w", err)
	}
	var d pendingData
	if err := json.Unmarshal([]byte(rec.Data), &d); err != nil {
		return nil, fmt.Errorf("confirm certificate registration: pending data: %w", err)
	}
	return r.enrol(ctx, Person{ID: d.ID, GivenName: d.GivenName, Surnames: d.Surnames, Mobile: d.Mobile, Email: email},
		policy.ElectronicCertificate, citizenActor(d.ID))
}

// codeLocked is the error while wrong registration codes lock the
// citizen's registrations: ErrTooManyAttempts, saying until when. Any
// other error is the attempt counter's.
func codeLocked(err error) error {
	if r, ok := policy.IsLocked(err); ok {
		return fmt.Errorf("sms code: %w: %s", ErrTooManyAttempts, r.Reason)
	}
	return fmt.Errorf("registration code attempts: %w", err)
}
