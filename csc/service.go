package csc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// Spec is the CSC API version this package implements.
const Spec = "2.2.0.0"

// Defaults of Options.
const (
	DefaultSADTTL        = 5 * time.Minute
	DefaultMaxSignatures = 100
)

// Certificates is what the service needs of the CA; *ca.Authority is one.
type Certificates interface {
	Certificate(ctx context.Context, ref string) (*ca.Certificate, error)
	Certificates(ctx context.Context, o ca.ListOptions) ([]*ca.Certificate, error)
	Issuing() *x509.Certificate
	Root() *x509.Certificate
}

// Keys looks keys up; *keystore.HSM is one.
type Keys interface {
	Key(ctx context.Context, id string) (*keystore.Key, error)
}

// Citizens looks citizens up; the registry and the store are ones.
type Citizens interface {
	Citizen(ctx context.Context, id string) (*store.Citizen, error)
}

// Auditor records OTP events; *audit.Log is one. Key use is recorded by
// the signing service.
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

var (
	_ Certificates = (*ca.Authority)(nil)
	_ Keys         = (*keystore.HSM)(nil)
	_ Citizens     = (*registry.Service)(nil)
	_ Citizens     = store.RegistryStore(nil)
	_ Auditor      = (*audit.Log)(nil)
)

// Options configures a Service. Store, Certificates, Keys, Signing,
// Citizens, SMS and OTP are required.
type Options struct {
	Store        store.CSCStore
	Certificates Certificates
	Keys         Keys // looks keys up for credentials/info; signing is Signing's
	// Signing authorises, makes and records every signature.
	Signing  *signing.Service
	Citizens Citizens
	SMS      sms.Gateway
	OTP      *policy.OTPHasher
	Rules    policy.OTPRules // zero: policy.DefaultOTPRules
	// Auditor receives the OTP records; nil means the signing service's
	// audit log.
	Auditor Auditor
	// Attempts counts wrong codes on the holder's SMS-code channel
	// (policy.OTPScope), whichever portal calls and shared with the
	// approval page: firmad passes the one it gives every service. Nil:
	// the policy's defaults on Store, which must then be a
	// policy.AttemptStore (every store.Store is).
	Attempts *policy.Attempts

	// ExplicitOff turns off the explicit path (credentials/sendOTP and
	// credentials/authorize), where the client collects the citizen's SMS
	// code and relays it: SCAL1 at best.
	ExplicitOff bool
	// Timestamper, when set, serves signatures/timestamp and signDoc's
	// Ades-B-T (the built-in TSA or the configured ones).
	Timestamper signer.Timestamper
	// OAuth2URL is the base URI of the OAuth 2.0 authorisation server
	// (csc/oauth) when it is served: info then lists oauth2code, and
	// credentials say oauth2code.
	OAuth2URL string

	SADTTL        time.Duration // how long a SAD may be used; default 5 minutes
	MaxSignatures int           // numSignatures allowed in one SAD ("multisign"); default 100
	// TransactionTTL bounds credentials/extendTransaction: no SAD of an
	// authorisation lives past it, counted from the approval; default
	// DefaultTransactionTTL.
	TransactionTTL time.Duration

	// What info returns.
	Name, Description, Logo, Region, Lang string

	Log        *slog.Logger
	Registerer prometheus.Registerer // nil registers no metrics
	Clock      func() time.Time
}

// Service is the CSC API core, independent of HTTP.
type Service struct {
	opt Options
	log *slog.Logger
	now func() time.Time
	m   *metrics
	// serviceTokens looks up service-scope OAuth tokens (SetServiceTokens).
	serviceTokens func(ctx context.Context, tok string) (string, bool)
	// revoker serves auth/revoke (SetTokenRevoker).
	revoker TokenRevoker
}

// New returns a Service.
func New(opt Options) (*Service, error) {
	switch {
	case opt.Store == nil, opt.Certificates == nil, opt.Keys == nil, opt.Citizens == nil:
		return nil, errors.New("csc: store, certificates, keys and citizens are required")
	case opt.Signing == nil:
		return nil, errors.New("csc: the signing service is required: no signature is made or released without its audit records")
	case opt.SMS == nil || opt.OTP == nil:
		return nil, errors.New("csc: an SMS gateway and an OTP hasher are required")
	}
	if opt.Auditor == nil {
		opt.Auditor = opt.Signing.Auditor()
	}
	opt.Rules = opt.Rules.WithDefaults()
	if opt.Attempts == nil {
		as, ok := opt.Store.(policy.AttemptStore)
		if !ok {
			return nil, errors.New("csc: an attempt policy is required (the store keeps no attempt counters)")
		}
		opt.Attempts = policy.NewAttempts(as, policy.AttemptRules{})
	}
	if opt.SADTTL <= 0 {
		opt.SADTTL = DefaultSADTTL
	}
	if opt.MaxSignatures <= 0 {
		opt.MaxSignatures = DefaultMaxSignatures
	}
	if opt.TransactionTTL <= 0 {
		opt.TransactionTTL = DefaultTransactionTTL
	}
	if opt.Name == "" {
		opt.Name = "Cl@ve Firma"
	}
	if opt.Description == "" {
		opt.Description = "Remote signature service of the Spanish public administration: citizens sign with cloud certificates, approving with an SMS one-time password."
	}
	if opt.Region == "" {
		opt.Region = "ES"
	}
	if opt.Lang == "" {
		opt.Lang = "es"
	}
	s := &Service{opt: opt, log: opt.Log, now: opt.Clock}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	m, err := newMetrics(opt.Registerer)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Caller is the authenticated client: a portal.
type Caller struct {
	ID   string
	Name string
	// Token is set when the portal called with an OAuth access token of
	// credential scope (a SAD) rather than its API key: signHash then
	// takes it as the SAD.
	Token string
	// Citizen is the citizen the token is for, with Token.
	Citizen string
}

// credential is a certificate a CSC client may name, with its key.
type credential struct {
	cert *ca.Certificate
	key  *keystore.Key
}

// usable explains why a credential cannot sign now, or returns "".
func (c *credential) unusable(now time.Time) string {
	switch {
	case c.cert.Status == store.CertRevoked:
		return "the credential's certificate is revoked"
	case c.cert.Status == store.CertExpired || now.After(c.cert.NotAfter):
		return "the credential's certificate has expired"
	case c.cert.Status != store.CertValid || c.cert.Cert == nil:
		return "the credential's certificate is not issued yet"
	case c.key == nil || !c.key.DestroyedAt.IsZero():
		return "the credential's key is destroyed"
	}
	return ""
}

// credential finds a credential by ID. An unknown ID and one that exists
// get the same answer, so IDs cannot be probed.
func (s *Service) credential(ctx context.Context, id string) (*credential, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, invalid("missing string parameter credentialID")
	}
	c, err := s.opt.Certificates.Certificate(ctx, id)
	if errors.Is(err, ca.ErrNotFound) {
		return nil, invalid("invalid parameter credentialID")
	}
	if err != nil {
		return nil, internal(fmt.Errorf("credential %s: %w", id, err))
	}
	if c.ID != id || c.KeyID == "" || c.Status == store.CertPending {
		return nil, invalid("invalid parameter credentialID")
	}
	k, err := s.opt.Keys.Key(ctx, c.KeyID)
	switch {
	case errors.Is(err, keystore.ErrKeyNotFound):
		k = nil
	case errors.Is(err, keystore.ErrKeyDestroyed):
		k = &keystore.Key{ID: c.KeyID, DestroyedAt: s.now()}
	case err != nil:
		return nil, internal(fmt.Errorf("credential %s key: %w", id, err))
	}
	return &credential{cert: c, key: k}, nil
}

// mayUse checks the credential can sign now and its owner may sign.
func (s *Service) mayUse(ctx context.Context, c *credential) (*store.Citizen, error) {
	if why := c.unusable(s.now()); why != "" {
		return nil, denied("%s", why)
	}
	cz, err := s.opt.Citizens.Citizen(ctx, c.cert.Owner)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, denied("the credential's owner is no longer registered")
		}
		return nil, internal(fmt.Errorf("citizen of %s: %w", c.cert.ID, err))
	}
	if err := policy.MaySign(policy.Level(cz.Level), cz.Status); err != nil {
		var r *policy.Refusal
		if errors.As(err, &r) {
			return nil, denied("the credential's owner may not sign: %s", r.Reason)
		}
		return nil, denied("the credential's owner may not sign")
	}
	return cz, nil
}

// Attempts is the wrong-code policy in force.
func (s *Service) Attempts() *policy.Attempts { return s.opt.Attempts }

// challengeID names the one OTP challenge of a credential and caller.
func challengeID(credentialID, caller string) string {
	sum := sha256.Sum256([]byte("csc-otp\x00" + credentialID + "\x00" + caller))
	return "cscotp-" + hex.EncodeToString(sum[:16])
}

// otpBinding is what a CSC OTP is bound to besides its challenge.
func otpBinding(credentialID string) []byte { return []byte("csc-credential:" + credentialID) }

// SendOTP sends the credential's owner an SMS one-time password for the
// caller, or a new one within the resend limits.
func (s *Service) SendOTP(ctx context.Context, caller Caller, credentialID string) error {
	if s.opt.ExplicitOff {
		return errExplicitOff("credentials/sendOTP")
	}
	c, err := s.credential(ctx, credentialID)
	if err != nil {
		return err
	}
	cz, err := s.mayUse(ctx, c)
	if err != nil {
		return err
	}
	return s.sendOTP(ctx, caller, c, cz)
}

// sendOTP sends the code of the credential and caller to its holder, of
// the explicit path or of the citizen's own ceremony alike.
func (s *Service) sendOTP(ctx context.Context, caller Caller, c *credential, cz *store.Citizen) error {
	now := s.now().UTC()
	// The lock is the holder's, not this caller's: once wrong codes locked
	// the channel (through any portal, or the approval page), no portal
	// gets an SMS sent until it ends.
	if err := s.opt.Attempts.Check(ctx, policy.OTPScope(cz.ID), now); err != nil {
		return s.locked(err)
	}
	id := challengeID(c.cert.ID, caller.ID)
	prev, err := s.opt.Store.CSCChallenge(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal(err)
	}
	resend := false
	if prev != nil {
		// A challenge locked by the per-caller count of earlier versions
		// is spent: a new one replaces it.
		if prev.LockedAt.IsZero() && prev.UsedAt.IsZero() && now.Before(prev.ExpiresAt) {
			resend = true
			if err := s.opt.Rules.MaySend(prev.Sends, prev.SentAt, now); err != nil {
				var r *policy.Refusal
				if errors.As(err, &r) {
					e := tooMany(r.Reason)
					// Too soon ends when the gap does; the resend limit
					// only with a new authorisation.
					if r.Rule == policy.RuleOTPResendTooSoon {
						e.RetryAfter = prev.SentAt.Add(s.opt.Rules.ResendGap).Sub(now)
					}
					return e
				}
				return internal(err)
			}
		}
	}
	code, err := policy.NewOTP()
	if err != nil {
		return internal(err)
	}
	hash := s.opt.OTP.Hash(id, otpBinding(c.cert.ID), code)
	expires := now.Add(s.opt.Rules.TTL)

	// Send before storing: a failed SMS must leave nothing counted as
	// sent, and the previous code (if any) still valid.
	if err := s.opt.SMS.Send(ctx, cz.Mobile, otpText(caller.Name, code, s.opt.Rules.TTL)); err != nil {
		s.audit(ctx, &audit.Record{Event: audit.OTPSent, Outcome: audit.Failure, Actor: audit.Actor{Role: audit.RolePortal, ID: caller.ID},
			Citizen: cz.ID, Portal: caller.ID, KeyID: c.cert.KeyID, Reason: "sms gateway failed", Details: map[string]string{"api": "csc"}})
		return unavailable("the SMS could not be sent; no code was sent, try again", err)
	}
	if resend {
		_, err = s.opt.Store.ResendCSCChallenge(ctx, id, hash, 1+s.opt.Rules.MaxResends, now.Add(-s.opt.Rules.ResendGap), now, expires)
	} else {
		ch := &store.CSCChallenge{ID: id, CredentialID: c.cert.ID, Caller: caller.ID, CitizenID: cz.ID, Hash: hash,
			Sends: 1, SentAt: now, ExpiresAt: expires, CreatedAt: now}
		var prevCreated time.Time
		if prev != nil {
			prevCreated = prev.CreatedAt
		}
		err = s.opt.Store.PutCSCChallenge(ctx, ch, prevCreated)
	}
	if errors.Is(err, store.ErrConflict) {
		return conflict("another OTP request for this credential came at the same time; use the code of the last SMS or try again")
	}
	if err != nil {
		return internal(err)
	}
	s.m.otps.WithLabelValues(map[bool]string{true: "resent", false: "sent"}[resend]).Inc()
	s.audit(ctx, &audit.Record{Event: audit.OTPSent, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RolePortal, ID: caller.ID},
		Citizen: cz.ID, Portal: caller.ID, KeyID: c.cert.KeyID, Details: map[string]string{"api": "csc", "credential_id": c.cert.ID}})
	s.log.InfoContext(ctx, "csc otp sent", "portal", caller.ID, "credential", c.cert.ID, "to", sms.Mask(cz.Mobile), "resend", resend)
	return nil
}

// locked turns the attempt policy's refusal into the API's: a lock is
// access_denied with the reason, which says until when.
func (s *Service) locked(err error) error {
	if r, ok := policy.IsLocked(err); ok {
		e := denied("the holder's codes are locked for every portal: %s", r.Reason)
		e.Err = err
		if !r.Until.IsZero() {
			e.RetryAfter = r.Until.Sub(s.now())
		}
		return e
	}
	return internal(err)
}

// otpText is the SMS of a CSC authorisation: it names the portal so the
// citizen knows who asks.
func otpText(portal string, code string, ttl time.Duration) string {
	portal = strings.TrimSpace(portal)
	if r := []rune(portal); len(r) > 40 {
		portal = string(r[:40])
	}
	mins := max(1, int(ttl.Round(time.Minute)/time.Minute))
	return fmt.Sprintf("Cl@ve Firma: %s es su código para autorizar firmas con su certificado pedidas por %s. Caduca en %d min. No lo comparta. / Code to authorise signatures for %s.",
		code, portal, mins, portal)
}

// AuthorizeRequest is credentials/authorize's input, decoded.
type AuthorizeRequest struct {
	CredentialID  string
	NumSignatures int
	Hashes        []string // base64
	HashAlgorithm string   // OID
	OTP           string
	Description   string
}

// Authorization is a new SAD.
type Authorization struct {
	SAD       string
	ExpiresIn int // seconds
}

// Authorize checks the OTP and returns a SAD for exactly the given hashes.
func (s *Service) Authorize(ctx context.Context, caller Caller, r AuthorizeRequest) (*Authorization, error) {
	if s.opt.ExplicitOff {
		return nil, errExplicitOff("credentials/authorize")
	}
	if r.NumSignatures < 1 {
		return nil, invalid("missing or invalid number parameter numSignatures: want at least 1")
	}
	if r.NumSignatures > s.opt.MaxSignatures {
		return nil, invalid("numSignatures %d is over the credential's multisign limit of %d", r.NumSignatures, s.opt.MaxSignatures)
	}
	if len(r.Hashes) == 0 {
		return nil, invalid("missing parameter hashes: this service is SCAL2, the SAD is bound to the hashes")
	}
	if len(r.Hashes) != r.NumSignatures {
		return nil, invalid("numSignatures is %d but %d hashes were given: they must match", r.NumSignatures, len(r.Hashes))
	}
	h, ok := hashByOID[r.HashAlgorithm]
	if !ok {
		return nil, invalid("hashAlgorithmOID %q: want the OID of SHA-256, SHA-384 or SHA-512", r.HashAlgorithm)
	}
	hashes, err := decodeHashes(r.Hashes, h)
	if err != nil {
		return nil, err
	}
	if r.OTP == "" {
		return nil, invalid("missing OTP: give it in authData as {\"id\": \"otp\", \"value\": \"...\"}")
	}
	if !policy.WellFormedOTP(r.OTP) {
		return nil, invalidOTP("the OTP must be %d digits", policy.OTPDigits)
	}
	c, err := s.credential(ctx, r.CredentialID)
	if err != nil {
		return nil, err
	}
	cz, err := s.mayUse(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s.verifyOTP(ctx, caller, c, cz, r.OTP, auditDocs(h, hashes), "explicit"); err != nil {
		return nil, err
	}
	return s.issueSAD(ctx, caller, c, cz, r.HashAlgorithm, r.NumSignatures, hashes)
}

// verifyOTP checks the holder's code for the credential and caller under
// the one attempt policy, and spends it. docs are what the code
// authorises; path (explicit, or oauth2code for the citizen's own page)
// goes to the audit record, since the two are not the same assurance.
func (s *Service) verifyOTP(ctx context.Context, caller Caller, c *credential, cz *store.Citizen, otp string, docs []audit.Document, path string) error {
	now := s.now().UTC()
	// The holder's lock comes first: whichever portal asks, and whether
	// or not it holds a code, the answer is that codes are locked.
	scope := policy.OTPScope(cz.ID)
	if err := s.opt.Attempts.Check(ctx, scope, now); err != nil {
		return s.locked(err)
	}
	id := challengeID(c.cert.ID, caller.ID)
	ch, err := s.opt.Store.CSCChallenge(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return invalidOTP("no OTP was sent for this credential: call credentials/sendOTP first")
	}
	if err != nil {
		return internal(err)
	}
	actor := audit.Actor{Role: audit.RolePortal, ID: caller.ID}
	switch {
	case !ch.UsedAt.IsZero(), !ch.LockedAt.IsZero():
		return invalidOTP("the OTP was already used; ask for a new one with credentials/sendOTP")
	case !now.Before(ch.ExpiresAt):
		return invalidOTP("the OTP has expired; ask for a new one with credentials/sendOTP")
	case ch.CitizenID != cz.ID:
		return invalidOTP("the OTP was sent for another holder; ask for a new one")
	}
	// The lock, the comparison and the count are one step on the holder's
	// channel: guesses from several portals and nodes at once take turns,
	// and none is compared once the budget is spent. A right code resets.
	f, err := s.opt.Attempts.Verify(ctx, scope, now, func() bool { return s.opt.OTP.Check(ch.Hash, id, otpBinding(c.cert.ID), otp) })
	if err != nil && !errors.Is(err, policy.ErrWrongCode) {
		// Locked meanwhile by a wrong code elsewhere: not compared.
		return s.locked(err)
	}
	if err != nil {
		if f.Locked {
			// The code dies with the lock, so it cannot be tried once the
			// lockout ends.
			if err := s.opt.Store.UseCSCChallenge(ctx, id, now); err != nil && !errors.Is(err, store.ErrConflict) {
				s.log.WarnContext(ctx, "csc locked otp not voided", "credential", c.cert.ID, "err", err)
			}
			s.m.otps.WithLabelValues("locked").Inc()
			s.audit(ctx, &audit.Record{Event: audit.OTPLocked, Outcome: audit.Denied, Actor: actor, Citizen: cz.ID, Portal: caller.ID,
				KeyID: c.cert.KeyID, Reason: "too many wrong codes", Details: map[string]string{"api": "csc",
					"failures": fmt.Sprint(f.Failures), "locked_until": f.LockedUntil.UTC().Format(time.RFC3339)}})
			return denied("wrong OTP %d times: the holder's codes are locked for every portal; ask for a new one with credentials/sendOTP after %s",
				f.Failures, f.LockedUntil.Format(time.RFC3339))
		}
		s.m.otps.WithLabelValues("wrong").Inc()
		s.audit(ctx, &audit.Record{Event: audit.OTPFailed, Outcome: audit.Failure, Actor: actor, Citizen: cz.ID, Portal: caller.ID,
			KeyID: c.cert.KeyID, Reason: "wrong code", Details: map[string]string{"api": "csc", "failures": fmt.Sprint(f.Failures)}})
		left := f.Left
		return invalidOTP("wrong OTP; %d %s left", left, plural(left, "try", "tries"))
	}
	if err := s.opt.Store.UseCSCChallenge(ctx, id, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return invalidOTP("the OTP was already used; ask for a new one with credentials/sendOTP")
		}
		return internal(err)
	}
	s.m.otps.WithLabelValues("accepted").Inc()
	s.audit(ctx, &audit.Record{Event: audit.OTPChecked, Outcome: audit.Success, Actor: actor, Citizen: cz.ID, Portal: caller.ID,
		KeyID: c.cert.KeyID, Documents: docs,
		Details: map[string]string{"api": "csc", "credential_id": c.cert.ID, "num_signatures": fmt.Sprint(len(docs)), "auth_mode": path}})
	return nil
}

// issueSAD stores a new SAD for exactly hashes, which a checked code
// authorised, and returns it.
func (s *Service) issueSAD(ctx context.Context, caller Caller, c *credential, cz *store.Citizen, hashAlgo string, numSignatures int,
	hashes [][]byte) (*Authorization, error) {
	now := s.now().UTC()
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, internal(err)
	}
	sadText := base64.RawURLEncoding.EncodeToString(tok)
	sad := &store.SAD{ID: sadID(sadText), CredentialID: c.cert.ID, Caller: caller.ID, CitizenID: cz.ID, KeyID: c.cert.KeyID,
		HashAlgo: hashAlgo, NumSignatures: numSignatures, Hashes: hashes, CreatedAt: now, ExpiresAt: now.Add(s.opt.SADTTL)}
	if err := s.opt.Store.CreateSAD(ctx, sad); err != nil {
		return nil, internal(err)
	}
	s.log.InfoContext(ctx, "csc sad issued", "portal", caller.ID, "credential", c.cert.ID, "signatures", numSignatures)
	return &Authorization{SAD: sadText, ExpiresIn: int(s.opt.SADTTL / time.Second)}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sadID is how a SAD is stored: its SHA-256, so the store alone cannot
// sign anything.
func sadID(sad string) string {
	sum := sha256.Sum256([]byte("csc-sad\x00" + sad))
	return hex.EncodeToString(sum[:])
}

// decodeHashes decodes base64 hashes, checks their length against h and
// refuses duplicates.
func decodeHashes(in []string, h crypto.Hash) ([][]byte, error) {
	out := make([][]byte, len(in))
	seen := make(map[string]int, len(in))
	for i, s := range in {
		b, err := decodeB64(s)
		if err != nil {
			return nil, invalid("hashes[%d] is not base64", i)
		}
		if len(b) != h.Size() {
			return nil, invalid("hashes[%d] is %d bytes; a %s hash is %d", i, len(b), h, h.Size())
		}
		if j, dup := seen[string(b)]; dup {
			return nil, invalid("hashes[%d] repeats hashes[%d]: each hash may be listed once", i, j)
		}
		seen[string(b)] = i
		out[i] = b
	}
	return out, nil
}

func auditDocs(h crypto.Hash, hashes [][]byte) []audit.Document {
	docs := make([]audit.Document, len(hashes))
	for i, d := range hashes {
		docs[i] = audit.Digest(h, d)
	}
	return docs
}

// SignHashRequest is signatures/signHash's input, decoded.
type SignHashRequest struct {
	CredentialID   string
	SAD            string
	Hashes         []string // base64
	HashAlgorithm  string   // OID; may be omitted when signAlgo implies it
	SignAlgo       string   // OID
	SignAlgoParams string   // base64 DER, RSASSA-PSS only
}

// SignHash signs hashes the SAD authorised, each at most once.
func (s *Service) SignHash(ctx context.Context, caller Caller, r SignHashRequest) ([][]byte, error) {
	if r.SAD == "" {
		// With an OAuth access token of credential scope, the token is the
		// SAD (CSC v2.2 11.9).
		r.SAD = caller.Token
	}
	if r.SAD == "" {
		return nil, invalid("missing string parameter SAD")
	}
	if len(r.Hashes) == 0 {
		return nil, invalid("missing parameter hashes")
	}
	if r.SignAlgo == "" {
		return nil, invalid("missing string parameter signAlgo")
	}
	if strings.TrimSpace(r.CredentialID) == "" {
		return nil, invalid("missing string parameter credentialID")
	}
	sad, now, err := s.liveSAD(ctx, caller, r.CredentialID, r.SAD)
	if err != nil {
		return nil, err
	}
	if r.HashAlgorithm != "" && r.HashAlgorithm != sad.HashAlgo {
		return nil, invalid("hashAlgorithmOID %s is not the %s the SAD was authorised for", r.HashAlgorithm, sad.HashAlgo)
	}
	h := hashByOID[sad.HashAlgo]
	hashes, err := decodeHashes(r.Hashes, h)
	if err != nil {
		return nil, err
	}
	if err := sadAllows(sad, hashes); err != nil {
		return nil, err
	}
	c, err := s.credential(ctx, sad.CredentialID)
	if err != nil {
		return nil, err
	}
	if c.cert.KeyID != sad.KeyID {
		return nil, denied("the credential's key changed since the SAD was issued; authorize again")
	}
	// The citizen, certificate and key are the signing service's to check;
	// a missing or destroyed key has no type to pick a scheme with, and is
	// refused there.
	var scheme keystore.Scheme
	if c.key != nil && c.key.DestroyedAt.IsZero() {
		if scheme, err = resolveSignAlgo(c.key.Type, r.SignAlgo, r.SignAlgoParams, h); err != nil {
			return nil, err
		}
	}
	docs := auditDocs(h, hashes)
	g, err := s.opt.Signing.Authorise(ctx, signing.Request{Purpose: signing.PurposeCSC, Actor: audit.Actor{Role: audit.RolePortal, ID: caller.ID},
		Citizen: c.cert.Owner, Certificate: c.cert.ID, Portal: caller.ID, Documents: docs,
		Details:  map[string]string{"api": "csc", "credential_id": c.cert.ID},
		Evidence: &sadEvidence{st: s.opt.Store, id: sad.ID, hashes: hashes, now: now, log: s.log}})
	if err != nil {
		return nil, s.authoriseError(ctx, sad.ID, now, err)
	}
	sigs, err := g.SignDigests(ctx, scheme, h, hashes)
	if err != nil {
		s.giveBack(ctx, sad.ID, hashes)
		s.m.signatures.WithLabelValues("error").Add(float64(len(hashes)))
		if rerr := g.Release(ctx, signing.Result{Documents: docs, Format: "raw", Scheme: scheme, Failure: "signing failed"}); rerr != nil {
			s.log.ErrorContext(ctx, "csc: failed signing not recorded", "err", rerr)
		}
		return nil, signError(err)
	}
	// Committed before the signatures leave, or they never do; the hashes
	// then stay the citizen's to sign.
	if err := g.Release(ctx, signing.Result{Documents: docs, Format: "raw", Scheme: scheme}); err != nil {
		s.giveBack(ctx, sad.ID, hashes)
		s.m.signatures.WithLabelValues("error").Add(float64(len(hashes)))
		return nil, unavailable("the audit log is unavailable; no signature was released", err)
	}
	s.m.signatures.WithLabelValues("ok").Add(float64(len(hashes)))
	s.log.InfoContext(ctx, "csc hashes signed", "portal", caller.ID, "credential", c.cert.ID, "count", len(sigs))
	return sigs, nil
}

// liveSAD loads the SAD the caller names for the credential, unexpired.
func (s *Service) liveSAD(ctx context.Context, caller Caller, credentialID, text string) (*store.SAD, time.Time, error) {
	sad, err := s.opt.Store.SAD(ctx, sadID(text))
	if errors.Is(err, store.ErrNotFound) {
		return nil, time.Time{}, invalid("invalid parameter SAD")
	}
	if err != nil {
		return nil, time.Time{}, internal(err)
	}
	// A SAD of another portal or credential is as good as no SAD: the
	// answer does not tell it exists.
	if sad.Caller != caller.ID || sad.CredentialID != credentialID {
		return nil, time.Time{}, invalid("invalid parameter SAD")
	}
	now := s.now().UTC()
	if !now.Before(sad.ExpiresAt) {
		return nil, time.Time{}, invalid("SAD expired: authorize again")
	}
	return sad, now, nil
}

// sadAllows checks every hash is one the SAD lists, not yet signed, and
// within numSignatures.
func sadAllows(sad *store.SAD, hashes [][]byte) error {
	if left := sad.NumSignatures - sad.Used; len(hashes) > left {
		return invalid("Hash is not authorized by the SAD: %d hashes asked but it allows %d more (numSignatures %d, %d used)", len(hashes), left, sad.NumSignatures, sad.Used)
	}
	seen := make(map[string]bool, len(hashes))
	for i, d := range hashes {
		if !containsHash(sad.Hashes, d) {
			return invalid("Hash is not authorized by the SAD: hashes[%d] is not one it lists", i)
		}
		if containsHash(sad.Spent, d) {
			return invalid("Hash is not authorized by the SAD: hashes[%d] was already signed with it; each hash is signed once", i)
		}
		if seen[string(d)] {
			return invalid("hashes[%d] repeats an earlier one: each hash is signed once", i)
		}
		seen[string(d)] = true
	}
	return nil
}

// sadEvidence is a CSC signature's consent: the SAD the citizen
// authorised with an OTP, of which these hashes are reserved (each signed
// once, all or none) when consumed and given back when nothing left.
type sadEvidence struct {
	st     store.CSCStore
	id     string
	hashes [][]byte
	now    time.Time
	log    *slog.Logger
}

func (e *sadEvidence) Kind() string { return "csc-sad" }

// Ref is the stored SAD ID, a hash of the SAD: the SAD itself is a bearer
// secret.
func (e *sadEvidence) Ref() string { return e.id }

func (e *sadEvidence) Consume(ctx context.Context) error {
	err := e.st.ReserveSAD(ctx, e.id, e.hashes, e.now)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("sad: %w: %w", signing.ErrEvidenceUsed, err)
	}
	return err
}

func (e *sadEvidence) Restore(ctx context.Context) error { return e.st.ReleaseSAD(ctx, e.id, e.hashes) }

// giveBack returns reserved hashes when no signature leaves: the citizen's
// authorisation still stands.
func (s *Service) giveBack(ctx context.Context, sadID string, hashes [][]byte) {
	if err := s.opt.Store.ReleaseSAD(context.WithoutCancel(ctx), sadID, hashes); err != nil {
		s.log.ErrorContext(ctx, "csc: release sad", "err", err)
	}
}

// authoriseError tells the client why the signing service refused, in the
// CSC terms the checks had before they moved there.
func (s *Service) authoriseError(ctx context.Context, sadID string, now time.Time, err error) error {
	var r *policy.Refusal
	switch {
	case errors.Is(err, signing.ErrAuditUnavailable):
		return unavailable("the audit log is unavailable; nothing was signed, try again", err)
	case errors.Is(err, signing.ErrEvidenceUsed):
		// Lost a race: tell which rule it broke from the state now.
		if cur, err2 := s.opt.Store.SAD(ctx, sadID); err2 == nil && !now.Before(cur.ExpiresAt) {
			return invalid("SAD expired: authorize again")
		}
		return invalid("Hash is not authorized by the SAD: another request signed these hashes with it at the same time; each hash is signed once")
	case errors.Is(err, ca.ErrUnknownCitizen):
		return denied("the credential's owner is no longer registered")
	case errors.As(err, &r):
		return denied("the credential's owner may not sign: %s", r.Reason)
	case errors.Is(err, signing.ErrRefused):
		return denied("the credential's owner may not sign")
	case errors.Is(err, signing.ErrCertificateRevoked):
		return denied("the credential's certificate is revoked")
	case errors.Is(err, signing.ErrCertificateExpired):
		return denied("the credential's certificate has expired")
	case errors.Is(err, signing.ErrCertificatePending):
		return denied("the credential's certificate is not issued yet")
	case errors.Is(err, keystore.ErrKeyDestroyed), errors.Is(err, keystore.ErrKeyNotFound):
		return denied("the credential's key is destroyed")
	case errors.Is(err, ca.ErrNotFound):
		return invalid("invalid parameter credentialID")
	}
	return internal(err)
}

func containsHash(list [][]byte, d []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, d) {
			return true
		}
	}
	return false
}

// signError maps a signing-core failure.
func signError(err error) error {
	switch {
	case errors.Is(err, keystore.ErrBusy), errors.Is(err, keystore.ErrTokenUnavailable), errors.Is(err, keystore.ErrClosed):
		return unavailable("the HSM is busy or unavailable; nothing was signed, try again", err)
	case errors.Is(err, keystore.ErrKeyDestroyed), errors.Is(err, keystore.ErrKeyNotFound):
		return denied("the credential's key is destroyed")
	case errors.Is(err, keystore.ErrUnsupported), errors.Is(err, signer.ErrDigestLength):
		return &errs.Error{Kind: errs.Invalid, Code: CodeInvalidRequest, Detail: "the key cannot sign with that algorithm", Err: err}
	}
	return internal(err)
}

// audit writes a record that is not a precondition of the operation; a
// failure is logged.
func (s *Service) audit(ctx context.Context, rec *audit.Record) {
	if err := s.opt.Auditor.Append(context.WithoutCancel(ctx), rec); err != nil {
		s.log.ErrorContext(ctx, "csc: audit record", "event", rec.Event, "err", err)
	}
}

// Purge deletes SADs that expired more than an hour ago; their hashes
// can no longer be signed, and the hour keeps a late signHash answered
// with expired_sad rather than "invalid SAD".
func (s *Service) Purge(ctx context.Context) (int64, error) {
	n, err := s.opt.Store.DeleteExpiredSADs(ctx, s.now().Add(-time.Hour))
	if err != nil {
		return 0, fmt.Errorf("csc purge: %w", err)
	}
	return n, nil
}

// Run purges expired SADs every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Purge(ctx); err != nil {
				s.log.WarnContext(ctx, "csc: purge expired SADs", "err", err)
			} else if n > 0 {
				s.log.DebugContext(ctx, "csc: purged expired SADs", "count", n)
			}
		}
	}
}
