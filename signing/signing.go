package signing

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

// Errors of Authorise and Release, told apart with errors.Is. The
// causes (policy.Refusal, ca.ErrNotAdvanced, keystore.ErrKeyDestroyed,
// the evidence's own error, ...) stay wrapped inside.
var (
	// ErrAuditUnavailable means a record the signing depends on could not
	// be written: from Authorise, nothing was signed and the evidence was
	// given back; from Release, the signatures must be withheld.
	ErrAuditUnavailable = errs.Sentinel(errs.Unavailable, "audit_unavailable", "audit log unavailable, operation refused")
	// ErrRefused means policy refused the signature: the citizen may not
	// sign, or is unknown.
	ErrRefused = errs.Sentinel(errs.Unprocessable, "signing_refused", "signature refused")
	// ErrCertificateRevoked, ErrCertificateExpired and
	// ErrCertificatePending mean the certificate named cannot sign now.
	ErrCertificateRevoked = errs.Sentinel(errs.Unprocessable, "certificate_revoked", "the certificate is revoked")
	ErrCertificateExpired = errs.Sentinel(errs.Unprocessable, "certificate_expired", "the certificate has expired")
	ErrCertificatePending = errs.Sentinel(errs.Unprocessable, "certificate_pending", "the certificate is not issued yet")
	// ErrEvidence means the request's evidence does not fit its purpose: a
	// citizen's key without consent, or a service key with a citizen's.
	ErrEvidence = errs.Sentinel(errs.Internal, "evidence_mismatch", "evidence does not fit the purpose")
	// ErrEvidenceUsed is what an Evidence's Consume wraps when the
	// evidence was used already or taken by a concurrent request, as
	// opposed to a failure to look.
	ErrEvidenceUsed = errs.Sentinel(errs.FailedPrecondition, "evidence_used", "the evidence was already used")
	// ErrRequest is a request this package cannot act on (no purpose, no
	// key, ...): a wiring mistake of the way in, not the client's.
	ErrRequest = errs.Sentinel(errs.Internal, "signing_request_malformed", "malformed signing request")
	// ErrNotApproved is a raw digest the grant's activation does not list:
	// consent covers the exact digests approved, nothing else.
	ErrNotApproved = errs.Sentinel(errs.Denied, "digest_not_approved", "a digest was not among those approved")
)

// Purpose is why a key is used. It decides whose key it is (a citizen's
// for transactions and CSC, a service key for operators and the TSA) and
// what evidence must stand behind the use.
type Purpose string

// Purposes.
const (
	PurposeTransaction Purpose = "transaction" // a citizen approved a transaction with an SMS OTP
	PurposeCSC         Purpose = "csc"         // a portal holds a SAD the citizen authorised with an SMS OTP
	PurposeOperator    Purpose = "operator"    // an authenticated operator's SignDigests call
	PurposeTSA         Purpose = "tsa"         // a token of the built-in time-stamping authority
)

func (p Purpose) valid() bool {
	switch p {
	case PurposeTransaction, PurposeCSC, PurposeOperator, PurposeTSA:
		return true
	}
	return false
}

// citizen reports whether the purpose signs with a citizen's key, under
// the citizen's consent.
func (p Purpose) citizen() bool { return p == PurposeTransaction || p == PurposeCSC }

// Evidence is what a use of a key rests on. For a citizen's key it is the
// citizen's single-use consent, implemented by the way in: Consume takes
// it atomically (of two requests presenting the same consent one wins),
// and Restore gives it back when nothing was signed, so the consent still
// stands.
type Evidence interface {
	Kind() string // short name for the record, e.g. "transaction-lease", "csc-sad"
	Ref() string  // what identifies it in the record; never a secret
	Consume(ctx context.Context) error
	Restore(ctx context.Context) error
}

// Standing is the evidence of a service key's purposes, where there is no
// consent to consume: an operator's call is already authenticated and
// authorised as the operator's (the record names the operator), and the
// TSA signs a timestamp for anyone by design. It is a value of its own,
// not a nil Evidence, so that Authorise can tell "no consent needed" from
// "consent forgotten" and refuse the latter.
type Standing struct {
	kind, ref string
}

// OperatorCall is the standing of an authenticated operator's call.
func OperatorCall(operator string) Standing {
	return Standing{kind: "operator-call", ref: operator}
}

// TimestampInterval is the standing of an audit interval of the built-in
// TSA; ref names the interval (its opening time). One grant covers every
// token the TSA signs until the interval's summary, Grant.Release with
// the audit.IssuanceSummary details, closes it: anonymous requests must
// not grow the audit log one record per token, and the key.activated
// record opening the interval is still written before the first of them
// is signed.
func TimestampInterval(ref string) Standing {
	return Standing{kind: "tsa-interval", ref: ref}
}

// Kind implements Evidence.
func (s Standing) Kind() string { return s.kind }

// Ref implements Evidence.
func (s Standing) Ref() string { return s.ref }

// Consume implements Evidence: there is nothing to take.
func (Standing) Consume(context.Context) error { return nil }

// Restore implements Evidence: there is nothing to give back.
func (Standing) Restore(context.Context) error { return nil }

// CA is what signing needs of the certificate authority; *ca.Authority is
// one.
type CA interface {
	// EnsureCertificate returns the citizen's valid certificate, issuing
	// one if needed.
	EnsureCertificate(ctx context.Context, citizenID string) (*ca.Certificate, error)
	Certificate(ctx context.Context, ref string) (*ca.Certificate, error)
	// Issuing is the issuing CA certificate, appended to chains; nil
	// before the CA is set up.
	Issuing() *x509.Certificate
}

// Citizens looks citizens up; the registry and the store are ones.
type Citizens interface {
	Citizen(ctx context.Context, id string) (*store.Citizen, error)
}

// Auditor appends records to the audit log; *audit.Log is one.
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

var (
	_ CA       = (*ca.Authority)(nil)
	_ Citizens = (*registry.Service)(nil)
	_ Citizens = store.RegistryStore(nil)
	_ Auditor  = (*audit.Log)(nil)
)

// Options wires a Service. Keys, Core and Auditor are required; CA and
// Citizens are needed for citizens' keys (transactions, CSC): without
// them those purposes are refused, which suits a TSA-only or
// operator-only service.
type Options struct {
	Keys     *keystore.HSM
	Core     *signer.Core // raw digest batches
	CA       CA
	Citizens Citizens
	Auditor  Auditor
	Log      *slog.Logger
	Clock    func() time.Time
}

// Service authorises and records every use of a key in the HSM.
type Service struct {
	opt Options
	log *slog.Logger
	now func() time.Time
}

// New returns a Service, or an error when a required part is missing:
// above all the Auditor, since a signature without its record must not
// exist.
func New(opt Options) (*Service, error) {
	switch {
	case opt.Auditor == nil:
		return nil, errors.New("signing: an auditor is required: no key is used without its audit record")
	case opt.Keys == nil || opt.Core == nil:
		return nil, errors.New("signing: the keystore and the signing core are required")
	}
	s := &Service{opt: opt, log: opt.Log, now: opt.Clock}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Auditor is the audit log the service records key use in; the ways in
// record their other events (otp.*, transaction.*) in the same log.
func (s *Service) Auditor() Auditor { return s.opt.Auditor }

// Request asks to use a key.
type Request struct {
	Purpose Purpose
	Actor   audit.Actor
	// Citizen is whose key signs, for PurposeTransaction and PurposeCSC.
	Citizen string
	// Certificate names the citizen's certificate (a CSC credential); ""
	// means the citizen's current one, issued if needed (transactions).
	Certificate string
	// KeyID is the service key, for PurposeOperator and PurposeTSA.
	KeyID     string
	Portal    string
	RequestID string
	// Documents are the digests approved: what the key.activated record
	// says the key is activated for.
	Documents []audit.Document
	// Details go on both the key.activated and the key.used records.
	Details  map[string]string
	Evidence Evidence
}

func (r *Request) check() error {
	if !r.Purpose.valid() {
		return fmt.Errorf("signing: %w: purpose %q", ErrRequest, r.Purpose)
	}
	if r.Evidence == nil {
		return fmt.Errorf("signing: %w: no evidence", ErrEvidence)
	}
	_, standing := r.Evidence.(Standing)
	switch {
	case r.Purpose.citizen() && standing:
		return fmt.Errorf("signing: %w: a citizen's key needs the citizen's consent", ErrEvidence)
	case !r.Purpose.citizen() && !standing:
		return fmt.Errorf("signing: %w: a %s key use has no consent to consume", ErrEvidence, r.Purpose)
	case r.Purpose.citizen() && r.Citizen == "":
		return fmt.Errorf("signing: %w: no citizen", ErrRequest)
	case !r.Purpose.citizen() && r.KeyID == "":
		return fmt.Errorf("signing: %w: no key", ErrRequest)
	case r.Actor.Role == "" || r.Actor.ID == "":
		return fmt.Errorf("signing: %w: no actor", ErrRequest)
	}
	return nil
}

// Authorise decides whether the request may use its key and records the
// decision. For a citizen's key it checks the citizen may sign
// (policy.MaySign), the certificate is valid and its key live; then, for
// every purpose, it consumes the evidence and appends the key.activated
// record with a fresh activation ID. If the record cannot be written the
// evidence is restored and the error wraps ErrAuditUnavailable: nothing
// may be signed.
func (s *Service) Authorise(ctx context.Context, r Request) (*Grant, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	g := &Grant{s: s, req: r}
	keyID := r.KeyID
	if r.Purpose.citizen() {
		cert, err := s.certificate(ctx, r)
		if err != nil {
			s.deny(ctx, r, "", err)
			return nil, err
		}
		g.cert, g.citizen, keyID = cert, r.Citizen, cert.KeyID
		g.chain = []*x509.Certificate{cert.Cert}
		if is := s.opt.CA.Issuing(); is != nil && cert.Issuer != "external" {
			g.chain = append(g.chain, is)
		}
	}
	key, err := s.opt.Keys.Signer(ctx, keyID)
	if err != nil {
		err = fmt.Errorf("signing: %w", err)
		s.deny(ctx, r, keyID, err)
		return nil, err
	}
	g.key = key
	if err := r.Evidence.Consume(ctx); err != nil {
		err = fmt.Errorf("signing: %s evidence: %w", r.Evidence.Kind(), err)
		s.deny(ctx, r, keyID, err)
		return nil, err
	}
	if g.id, err = activationID(); err != nil {
		s.restore(ctx, r.Evidence)
		return nil, fmt.Errorf("signing: %w", err)
	}
	details := g.details(map[string]string{"signing_purpose": string(r.Purpose), "evidence": r.Evidence.Kind()})
	if ref := r.Evidence.Ref(); ref != "" {
		details["evidence_ref"] = ref
	}
	if g.cert != nil {
		details["certificate"] = g.cert.ID
	}
	rec := &audit.Record{Event: audit.KeyActivated, Outcome: audit.Success, Actor: r.Actor, Citizen: g.citizen, Portal: r.Portal,
		KeyID: keyID, RequestID: r.RequestID, Documents: r.Documents, Details: details}
	if err := s.opt.Auditor.Append(ctx, rec); err != nil {
		s.restore(ctx, r.Evidence)
		s.log.ErrorContext(ctx, "signing refused: key.activated not recorded", "purpose", r.Purpose, "key", keyID, "err", err)
		return nil, fmt.Errorf("signing: %w: %w", ErrAuditUnavailable, err)
	}
	return g, nil
}

// deny records a refused activation, best effort: the refusal stands
// whether or not it is recorded, and nothing was signed. The reason is a
// fixed phrase, never the error text, which may name people.
func (s *Service) deny(ctx context.Context, r Request, keyID string, err error) {
	if ctx.Err() != nil {
		return // the caller went away: not a decision
	}
	reason := reasonOf(err)
	if reason == "" {
		return // a failure (store, HSM), not a refusal: nothing was decided
	}
	if keyID == "" {
		keyID = "-" // refused before the key was known
	}
	rec := &audit.Record{Event: audit.KeyActivated, Outcome: audit.Denied, Actor: r.Actor, Citizen: r.Citizen, Portal: r.Portal,
		KeyID: keyID, RequestID: r.RequestID, Documents: r.Documents, Reason: reason,
		Details: map[string]string{"signing_purpose": string(r.Purpose), "evidence": r.Evidence.Kind()}}
	if !r.Purpose.citizen() {
		rec.Citizen = ""
	}
	if aerr := s.opt.Auditor.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		s.log.ErrorContext(ctx, "refused key activation not recorded", "purpose", r.Purpose, "err", aerr)
	}
}

// reasonOf names a refusal for the record, or is "" for an error that is
// no refusal.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrRefused), errors.Is(err, ca.ErrNotAdvanced), errors.Is(err, ca.ErrInactive),
		errors.Is(err, ca.ErrUnknownCitizen):
		return "the citizen may not sign"
	case errors.Is(err, ErrCertificateRevoked):
		return "certificate revoked"
	case errors.Is(err, ErrCertificateExpired):
		return "certificate expired"
	case errors.Is(err, ErrCertificatePending), errors.Is(err, ca.ErrPending):
		return "no certificate issued"
	case errors.Is(err, keystore.ErrKeyDestroyed):
		return "key destroyed"
	case errors.Is(err, keystore.ErrKeyNotFound), errors.Is(err, ca.ErrNotFound):
		return "key or certificate not found"
	case errors.Is(err, ErrEvidenceUsed):
		return "evidence already used"
	}
	return ""
}

// restore gives the evidence back, even when the request was cancelled:
// the consent must not be lost with it.
func (s *Service) restore(ctx context.Context, e Evidence) {
	if err := e.Restore(context.WithoutCancel(ctx)); err != nil {
		s.log.ErrorContext(ctx, "signing: evidence not restored", "evidence", e.Kind(), "err", err)
	}
}

// certificate checks the citizen may sign and returns the certificate to
// sign with, valid now.
func (s *Service) certificate(ctx context.Context, r Request) (*ca.Certificate, error) {
	if s.opt.CA == nil || s.opt.Citizens == nil {
		return nil, fmt.Errorf("signing: %w: no CA or citizen registry for %s signing", ErrRequest, r.Purpose)
	}
	c, err := s.opt.Citizens.Citizen(ctx, r.Citizen)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, registry.ErrNotFound):
		return nil, fmt.Errorf("signing: %w: %w: %w", ErrRefused, ca.ErrUnknownCitizen, err)
	case err != nil:
		return nil, fmt.Errorf("signing: citizen: %w", err)
	}
	if err := policy.MaySign(policy.Level(c.Level), c.Status); err != nil {
		// The CA's sentinels too, so that callers tell the two refusals
		// apart as they do when the CA refuses to issue.
		cause := ca.ErrInactive
		var rf *policy.Refusal
		if errors.As(err, &rf) && rf.Rule == policy.RuleAdvancedRequired {
			cause = ca.ErrNotAdvanced
		}
		return nil, fmt.Errorf("signing: %w: %w: %w", ErrRefused, cause, err)
	}
	var cert *ca.Certificate
	if r.Certificate != "" {
		cert, err = s.opt.CA.Certificate(ctx, r.Certificate)
		if err == nil && cert.Owner != c.ID && cert.Owner != r.Citizen {
			err = fmt.Errorf("certificate %s: %w: not the citizen's", r.Certificate, ca.ErrNotFound)
		}
	} else {
		cert, err = s.opt.CA.EnsureCertificate(ctx, r.Citizen)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: certificate: %w", err)
	}
	switch {
	case cert.Status == store.CertRevoked:
		return nil, fmt.Errorf("signing: certificate %s: %w", cert.ID, ErrCertificateRevoked)
	case cert.Status == store.CertExpired || !s.now().Before(cert.NotAfter):
		return nil, fmt.Errorf("signing: certificate %s: %w", cert.ID, ErrCertificateExpired)
	case cert.Status != store.CertValid || cert.Cert == nil || cert.KeyID == "":
		return nil, fmt.Errorf("signing: certificate %s: %w: %w", cert.ID, ErrCertificatePending, ca.ErrPending)
	}
	return cert, nil
}

func activationID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("activation id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Grant is one authorised use of a key: the key, the certificate and
// chain for a citizen's key, and the activation the signatures are
// recorded under.
type Grant struct {
	s       *Service
	req     Request
	id      string
	key     *keystore.Signer
	cert    *ca.Certificate // nil for a service key
	chain   []*x509.Certificate
	citizen string

	approvedOnce sync.Once
	approvedSet  map[audit.Document]bool // the request's digests, by hash and hex
}

// Activation is the activation ID the grant's records share.
func (g *Grant) Activation() string { return g.id }

// Key describes the key granted.
func (g *Grant) Key() *keystore.Key { return g.key.Key() }

// Certificate is the citizen's certificate; nil for a service key.
func (g *Grant) Certificate() *ca.Certificate { return g.cert }

// Chain is the signing certificate and, unless it is an external CA's,
// the issuing CA certificate; nil for a service key.
func (g *Grant) Chain() []*x509.Certificate { return g.chain }

// SignDigests signs a batch of digests of hash h through the signing
// core, all or nothing. An empty scheme is the key type's default.
func (g *Grant) SignDigests(ctx context.Context, scheme keystore.Scheme, h crypto.Hash, digests [][]byte) ([][]byte, error) {
	if err := g.approved(h, digests); err != nil {
		return nil, err
	}
	if scheme == "" {
		var err error
		if scheme, err = keystore.SchemeFor(g.key.Key().Type, nil); err != nil {
			return nil, err
		}
	}
	return g.s.opt.Core.Sign(ctx, signer.Request{KeyID: g.key.Key().ID, Scheme: scheme, Hash: h, Digests: digests, Purpose: string(g.req.Purpose)})
}

// approved checks that every raw digest is one the key.activated record
// lists, so that a grant cannot sign more than the consent behind it. (The
// CMS builders sign signed attributes that cover the approved digests;
// Signer is theirs, and the record names the documents.)
func (g *Grant) approved(h crypto.Hash, digests [][]byte) error {
	g.approvedOnce.Do(func() {
		g.approvedSet = make(map[audit.Document]bool, len(g.req.Documents))
		for _, d := range g.req.Documents {
			g.approvedSet[audit.Document{Hash: d.Hash, Digest: d.Digest}] = true
		}
	})
	for i, d := range digests {
		if !g.approvedSet[audit.Digest(h, d)] {
			return fmt.Errorf("signing: digest %d: %w", i, ErrNotApproved)
		}
	}
	return nil
}

// Signer returns a crypto.Signer for the CMS builders (CAdES, PAdES, the
// TSA's tokens) that signs with ctx, since crypto.Signer has no context
// of its own, and counts its signatures with the core's.
func (g *Grant) Signer(ctx context.Context) crypto.Signer {
	return g.s.opt.Core.Signer(ctx, g.key, string(g.req.Purpose))
}

// Result is one key.used record: documents signed (or not) alike.
type Result struct {
	Documents []audit.Document
	// Format is the audit.DetailFormat value ("raw", "cades", "pades");
	// "" writes none.
	Format string
	// Scheme names the algorithm detail; "" is the key type's default.
	Scheme keystore.Scheme
	// Failure is why the documents were not signed (no secrets); "" means
	// they were.
	Failure string
	// Details are added to the request's.
	Details map[string]string
}

// Release appends one key.used record per result, with the grant's
// activation ID. It returns an error (wrapping ErrAuditUnavailable) when a
// record cannot be written: the signatures of that result must then be
// withheld. Release may be called more than once, as results are known.
func (g *Grant) Release(ctx context.Context, results ...Result) error {
	var errs []error
	for _, res := range results {
		details := g.details(res.Details)
		details[audit.DetailAlgorithm] = Algorithm(g.key.Key().Type, res.Scheme)
		if res.Format != "" {
			details[audit.DetailFormat] = res.Format
		}
		rec := &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success, Actor: g.req.Actor, Citizen: g.citizen,
			Portal: g.req.Portal, KeyID: g.key.Key().ID, RequestID: g.req.RequestID, Documents: res.Documents, Details: details}
		actx := ctx
		if res.Failure != "" {
			// A failure's record is written even when the caller gave up.
			rec.Outcome, rec.Reason, actx = audit.Failure, res.Failure, context.WithoutCancel(ctx)
		}
		if err := g.s.opt.Auditor.Append(actx, rec); err != nil {
			g.s.log.ErrorContext(ctx, "key.used not recorded", "purpose", g.req.Purpose, "key", rec.KeyID,
				"outcome", rec.Outcome, "documents", len(rec.Documents), "err", err)
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("signing: %w: %w", ErrAuditUnavailable, errors.Join(errs...))
	}
	return nil
}

// details is the request's details, the activation ID and extra, in a
// map of the record's own.
func (g *Grant) details(extra map[string]string) map[string]string {
	d := make(map[string]string, len(g.req.Details)+len(extra)+3)
	maps.Copy(d, g.req.Details)
	maps.Copy(d, extra)
	d[audit.DetailActivation] = g.id
	return d
}

// Algorithm names a key type and scheme as the audit log's signature
// counts label them (audit.DetailAlgorithm): "ecdsa-p256", "rsa-pkcs1-2048",
// "rsa-pss-3072". An empty scheme is the key type's default.
func Algorithm(t keystore.Type, scheme keystore.Scheme) string {
	switch t {
	case keystore.ECP256:
		return "ecdsa-p256"
	case keystore.ECP384:
		return "ecdsa-p384"
	}
	bits := ""
	switch t {
	case keystore.RSA2048:
		bits = "2048"
	case keystore.RSA3072:
		bits = "3072"
	default:
		return string(t)
	}
	if scheme == keystore.PSS {
		return "rsa-pss-" + bits
	}
	return "rsa-pkcs1-" + bits
}
