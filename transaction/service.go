package transaction

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/facturae"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// Defaults of Options.
const (
	DefaultTTL              = 10 * time.Minute
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultCallbackAttempts = 8
	maxNameLen              = 200
	maxIdempotencyKey       = 128
)

// Options wires a Service. Store, Portals, Citizens, Certificates,
// Signing, SMS, OTPKey and BaseURL are required.
type Options struct {
	Store        store.TransactionStore
	Portals      Portals
	Citizens     Citizens
	Certificates Certificates
	// Signing authorises, makes and records every signature.
	Signing *signing.Service
	SMS     sms.Gateway
	// OTPKey keys the stored hashes of one-time passwords and citizen
	// sessions: at least 32 random bytes, the same on every node.
	OTPKey []byte
	OTP    policy.OTPRules
	// Attempts counts wrong codes on the citizen's SMS-code channel
	// (policy.OTPScope), shared with the CSC API: firmad passes the one
	// it gives every service. Nil: the policy's defaults on Store, which
	// must then be a policy.AttemptStore (every store.Store is).
	Attempts *policy.Attempts
	// BaseURL is the public URL of firmad's HTTP listener; citizens are
	// sent to BaseURL + "/sign/" + id.
	BaseURL string
	// TTL is how long a transaction may wait for approval; default 10 min.
	TTL time.Duration
	// Retention is how long documents and signed results are kept after a
	// transaction ends (digests and outcomes stay); default 7 days.
	Retention time.Duration
	// Timestamper, if set, makes CAdES and PAdES signatures B-T by default.
	Timestamper signer.Timestamper
	// Validation, with Timestamper, allows levels B-LT and B-LTA; each
	// transaction's signing shares one Batch, so its documents cost one
	// status exchange per certificate.
	Validation *ltv.Gatherer
	// UpgradeGrace is how long after its signature timestamp a signature
	// may be raised to B-LT or B-LTA by Upgrade; 0 means at once.
	UpgradeGrace time.Duration
	// Policies are the signature policies documents may name besides
	// FirmaAGE (signer.PolicyAGE), which is always there; PortalPolicies
	// maps a portal ID to the policy its documents get when they name
	// none.
	Policies       map[string]*signer.Policy
	PortalPolicies map[string]string
	// Formats picks a format for documents that name none; default PDF ->
	// PAdES, everything else -> CAdES.
	Formats *signer.DefaultFormats
	// HTTPClient posts callbacks; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// CallbackAttempts is how many times a callback is tried; default 8,
	// with exponential backoff from CallbackBackoff (default 1 s) up to 5
	// minutes between tries.
	CallbackAttempts int
	CallbackBackoff  time.Duration
	// Auditor receives the otp.* and transaction.* records; nil means the
	// signing service's audit log. Key use is recorded by Signing.
	Auditor Auditor
	// SignWorkers is how many transactions this process signs at once,
	// off the approving request (see Start); default 2. SignQueue bounds
	// the approved transactions waiting for one; default 64 (more wait in
	// the store for the resume scan).
	SignWorkers int
	SignQueue   int
	// SignLease is how long a worker holds a transaction after its last
	// progress (the lease is renewed as each document's outcome is
	// stored); a worker that stalls longer, or dies, loses it to the next
	// resume scan, here or on another node. Default 1 minute: more than
	// one document's worst case (a PAdES B-T whose TSA times out).
	SignLease time.Duration
	// SignExpiry is how long after its approval a transaction whose
	// signing transient faults (the HSM or the audit log away) keep
	// handing back is retried; then it expires. Default 1 hour.
	SignExpiry time.Duration
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Clock      func() time.Time
}

// Service runs signing transactions.
type Service struct {
	st      store.TransactionStore
	opt     Options
	rules   policy.OTPRules
	attempt *policy.Attempts // wrong codes, on the citizen's channel
	otp     *policy.OTPHasher
	log     *slog.Logger
	now     func() time.Time
	m       *metrics
	formats signer.DefaultFormats
	client  *http.Client
	kick    chan struct{}
	active  sync.Map // transaction IDs this process is signing
	audit   Auditor
	w       *workers
}

// New returns a service.
func New(opt Options) (*Service, error) {
	switch {
	case opt.Store == nil:
		return nil, errors.New("transaction: a store is required")
	case opt.Portals == nil:
		return nil, errors.New("transaction: a portal registry is required")
	case opt.Citizens == nil:
		return nil, errors.New("transaction: a citizen registry is required")
	case opt.Certificates == nil:
		return nil, errors.New("transaction: a certificate authority is required")
	case opt.Signing == nil:
		return nil, errors.New("transaction: the signing service is required: no signature is made or released without its audit records")
	case opt.SMS == nil:
		return nil, errors.New("transaction: an SMS gateway is required")
	}
	u, err := url.Parse(opt.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("transaction: base URL %q is not an absolute URL", opt.BaseURL)
	}
	h, err := policy.NewOTPHasher(opt.OTPKey)
	if err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	if opt.TTL <= 0 {
		opt.TTL = DefaultTTL
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.CallbackAttempts <= 0 {
		opt.CallbackAttempts = DefaultCallbackAttempts
	}
	if opt.CallbackBackoff <= 0 {
		opt.CallbackBackoff = time.Second
	}
	if opt.SignWorkers <= 0 {
		opt.SignWorkers = DefaultSignWorkers
	}
	if opt.SignQueue <= 0 {
		opt.SignQueue = DefaultSignQueue
	}
	if opt.SignLease <= 0 {
		opt.SignLease = DefaultSignLease
	}
	if opt.SignExpiry <= 0 {
		opt.SignExpiry = DefaultSignExpiry
	}
	attempts := opt.Attempts
	if attempts == nil {
		as, ok := opt.Store.(policy.AttemptStore)
		if !ok {
			return nil, errors.New("transaction: an attempt policy is required (the store keeps no attempt counters)")
		}
		attempts = policy.NewAttempts(as, policy.AttemptRules{})
	}
	s := &Service{st: opt.Store, opt: opt, rules: opt.OTP.WithDefaults(), attempt: attempts, otp: h, log: opt.Log, now: opt.Clock,
		client: opt.HTTPClient, kick: make(chan struct{}, 1), audit: opt.Auditor,
		w: &workers{queue: make(chan string, opt.SignQueue), stop: make(chan struct{})}}
	if s.audit == nil {
		s.audit = opt.Signing.Auditor()
	}
	s.opt.BaseURL = strings.TrimRight(opt.BaseURL, "/")
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if opt.Formats != nil {
		s.formats = *opt.Formats
	} else {
		s.formats = signer.StandardFormats()
	}
	if s.m, err = newMetrics(opt.Registerer); err != nil {
		return nil, err
	}
	if err := registerWorkerGauges(opt.Registerer, s.w, opt.SignWorkers); err != nil {
		return nil, err
	}
	return s, nil
}

// TTL is how long a transaction waits for approval.
func (s *Service) TTL() time.Duration { return s.opt.TTL }

// UpgradeGrace is the grace period Upgrade waits after a signature
// timestamp before B-LT and B-LTA.
func (s *Service) UpgradeGrace() time.Duration { return s.opt.UpgradeGrace }

// HasTimestamper tells whether B-T and higher levels can be made.
func (s *Service) HasTimestamper() bool { return s.opt.Timestamper != nil }

// OTPRules are the one-time password limits in force.
func (s *Service) OTPRules() policy.OTPRules { return s.rules }

// Attempts is the wrong-code policy in force.
func (s *Service) Attempts() *policy.Attempts { return s.attempt }

var hashes = map[string]crypto.Hash{HashSHA256: crypto.SHA256, HashSHA384: crypto.SHA384, HashSHA512: crypto.SHA512}

// ParseHash maps a hash name (sha256, SHA-256, ...) to its crypto.Hash.
func ParseHash(name string) (string, crypto.Hash, error) {
	n := strings.ToLower(strings.ReplaceAll(name, "-", ""))
	if n == "" {
		n = HashSHA256
	}
	h, ok := hashes[n]
	if !ok {
		return "", 0, fmt.Errorf("unknown hash %q (want sha256, sha384 or sha512)", name)
	}
	return n, h, nil
}

// Create checks a portal's request and records the transaction; the
// portal then sends the citizen to RedirectURL.
func (s *Service) Create(ctx context.Context, p *store.Portal, req CreateRequest) (*Created, error) {
	c, err := s.create(ctx, p, req)
	outcome := "ok"
	if err != nil {
		outcome = string(CodeOf(err))
		if outcome == "" {
			outcome = "error"
		}
	}
	s.m.created.WithLabelValues(outcome).Inc()
	return c, err
}

func (s *Service) create(ctx context.Context, p *store.Portal, req CreateRequest) (*Created, error) {
	if p == nil || p.Status != store.PortalActive {
		return nil, refuse(CodeForbidden, "the portal is not active")
	}
	lim := portal.EffectiveLimits(p)
	citizenID, err := registry.NormalizeID("citizen_id", req.CitizenID)
	if err != nil {
		reason := "is not a DNI or NIE"
		if fe := (*registry.FieldError)(nil); errors.As(err, &fe) {
			reason = fe.Reason
		}
		return nil, invalid("citizen_id", "%s", reason)
	}
	if !portal.RedirectAllowed(p, req.OKURL) {
		return nil, &Error{Code: CodeBadRedirect, Field: "ok_url", Message: "ok_url is not one of the portal's registered redirect URLs"}
	}
	if !portal.RedirectAllowed(p, req.ErrorURL) {
		return nil, &Error{Code: CodeBadRedirect, Field: "error_url", Message: "error_url is not one of the portal's registered redirect URLs"}
	}
	if len(req.IdempotencyKey) > maxIdempotencyKey || !printable(req.IdempotencyKey) {
		return nil, invalid("idempotency_key", "at most %d printable ASCII characters", maxIdempotencyKey)
	}
	level := req.Level
	switch level {
	case "":
		level = signer.LevelB
		if s.opt.Timestamper != nil {
			level = signer.LevelT
		}
	case signer.LevelB:
	case signer.LevelT:
		if s.opt.Timestamper == nil {
			return nil, invalid("level", "B-T needs a timestamp authority and none is configured")
		}
	case signer.LevelLT, signer.LevelLTA:
		if s.opt.Timestamper == nil || s.opt.Validation == nil {
			return nil, invalid("level", "%s needs a timestamp authority and validation material gathering, and they are not configured", level)
		}
	default:
		return nil, invalid("level", "%q: want B-B, B-T, B-LT or B-LTA", level)
	}
	n := len(req.Documents)
	switch {
	case n == 0 && !req.draft:
		return nil, invalid("documents", "at least one document is required")
	case n > 0 && req.draft:
		return nil, invalid("documents", "a batch starts empty: add documents with addDocumentToBatch")
	case n > lim.MaxDocuments:
		return nil, &Error{Code: CodeTooManyDocuments, Field: "documents",
			Message: fmt.Sprintf("%d documents; this portal may send at most %d per transaction", n, lim.MaxDocuments)}
	}
	docs := make([]*store.Document, n)
	items := make([]policy.ApprovalItem, n)
	seen := make(map[string]int, n)
	for i, in := range req.Documents {
		d, err := s.document(p.ID, i, in, lim)
		if err != nil {
			return nil, err
		}
		key := d.Hash + ":" + string(d.Digest)
		if j, dup := seen[key]; dup {
			return nil, &Error{Code: CodeDuplicateDocument, Field: fmt.Sprintf("documents[%d]", i),
				Message: fmt.Sprintf("documents[%d] is the same document as documents[%d]", i, j)}
		}
		seen[key] = i
		docs[i], items[i] = d, policy.ApprovalItem{Hash: d.Hash, Digest: d.Digest}
	}
	reqHash := requestHash(citizenID, req, level, docs)
	if req.IdempotencyKey != "" {
		if c, err := s.replay(ctx, p.ID, req.IdempotencyKey, reqHash); c != nil || err != nil {
			return c, err
		}
	}
	if err := s.checkCitizen(ctx, citizenID); err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	t := &store.Transaction{ID: id, PortalID: p.ID, CitizenID: citizenID, State: string(StateCreated), StopOnError: req.StopOnError,
		Level: string(level), OKURL: req.OKURL, ErrorURL: req.ErrorURL, IdempotencyKey: req.IdempotencyKey, RequestHash: reqHash,
		ApprovalDigest: policy.ApprovalDigest(items), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.opt.TTL)}
	if req.draft {
		t.State, t.ApprovalDigest = string(StateDraft), []byte{}
	}
	for _, d := range docs {
		d.TransactionID = id
	}
	if err := s.st.CreateTransaction(ctx, t, docs, lim.RatePerMin); err != nil {
		switch {
		case errors.Is(err, store.ErrRateLimited):
			return nil, refuse(CodeRateLimited, "this portal may create at most %d transactions per minute; retry shortly", lim.RatePerMin)
		case errors.Is(err, store.ErrConflict) && req.IdempotencyKey != "":
			if c, err := s.replay(ctx, p.ID, req.IdempotencyKey, reqHash); c != nil || err != nil {
				return c, err
			}
		}
		return nil, fail(CodeUnavailable, "the transaction could not be stored; retry", err)
	}
	s.log.InfoContext(ctx, "transaction created", "transaction", id, "portal", p.ID, "documents", n, "stop_on_error", req.StopOnError)
	s.record(ctx, &audit.Record{Event: audit.TransactionCreated, Outcome: audit.Success, Actor: portalActor(p.ID), Citizen: citizenID,
		Portal: p.ID, RequestID: id, Details: map[string]string{"transaction": id, "documents": strconv.Itoa(n)}})
	return s.created(t, false), nil
}

// created describes a stored transaction to its portal; a draft has no
// approval page yet.
func (s *Service) created(t *store.Transaction, replayed bool) *Created {
	c := &Created{ID: t.ID, State: State(t.State), ExpiresAt: t.ExpiresAt, Replayed: replayed}
	if c.State != StateDraft {
		c.RedirectURL = s.citizenURL(t.ID)
	}
	return c
}

// replay returns the transaction an earlier request with the same
// idempotency key made, or nil if there is none.
func (s *Service) replay(ctx context.Context, portalID, key string, reqHash []byte) (*Created, error) {
	t, err := s.st.TransactionByIdempotencyKey(ctx, portalID, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	if !bytes.Equal(t.RequestHash, reqHash) {
		return nil, &Error{Code: CodeIdempotencyReused, Field: "idempotency_key",
			Message: "this idempotency key was used before with a different request"}
	}
	return s.created(t, true), nil
}

func (s *Service) citizenURL(id string) string { return s.opt.BaseURL + "/sign/" + id }

// document checks one input document and computes its digest.
func (s *Service) document(portalID string, i int, in DocumentInput, lim portal.Limits) (*store.Document, error) {
	field := fmt.Sprintf("documents[%d]", i)
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name) {
		return nil, invalid(field+".name", "is required, at most %d characters", maxNameLen)
	}
	if r, ok := unsafeNameRune(name); ok {
		return nil, invalid(field+".name", "must not contain control or bidirectional-formatting characters (U+%04X)", r)
	}
	if len(in.MediaType) > 100 || !printable(in.MediaType) {
		return nil, invalid(field+".media_type", "not a media type")
	}
	hname, h, err := ParseHash(in.Hash)
	if err != nil {
		return nil, invalid(field+".hash", "%v", err)
	}
	f, err := signer.ParseFormat(string(in.Format))
	if err != nil {
		return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".format", Message: fmt.Sprintf("%s.format: %q: want raw, cades, pades, xades, facturae, asic-s-cades, asic-s-xades or asic-e-xades", field, in.Format)}
	}
	d := &store.Document{Index: i, Name: name, MediaType: in.MediaType, Hash: hname, Status: string(DocPending)}
	switch {
	case in.Content != nil && in.Digest != nil:
		return nil, invalid(field, "give either the content or the digest, not both")
	case in.Content != nil:
		if int64(len(in.Content)) > lim.MaxDocBytes {
			return nil, &Error{Code: CodeDocumentTooLarge, Field: field + ".content",
				Message: fmt.Sprintf("%s is %d bytes; at most %d per document", field, len(in.Content), lim.MaxDocBytes)}
		}
		if len(in.Content) == 0 {
			return nil, invalid(field+".content", "is empty")
		}
		hh := h.New()
		hh.Write(in.Content)
		d.Digest, d.Content, d.Size = hh.Sum(nil), in.Content, int64(len(in.Content))
		if f == "" {
			f = s.formats.For(signer.DocumentType(in.MediaType))
		}
		// Caught now rather than after the citizen approved.
		if f == signer.FormatPAdES && !bytes.HasPrefix(in.Content, []byte("%PDF-")) {
			return nil, &Error{Code: CodeInvalidDocument, Field: field + ".content",
				Message: field + ": pades needs a PDF, and this content does not start with %PDF-"}
		}
		// XML to be signed enveloped must be safe, well-formed XML: a
		// DOCTYPE, a bomb or a malformed document is refused here, with
		// the line, and nothing is stored.
		if f == signer.FormatXAdES && xades.IsXML(in.Content) {
			if _, err := xades.Parse(in.Content, xades.Limits{MaxBytes: int(lim.MaxDocBytes)}); err != nil {
				return nil, &Error{Code: CodeInvalidDocument, Field: field + ".content", Message: field + ": xades: " + err.Error()}
			}
		}
		// An invoice is checked as FacturaE before anyone is asked to
		// sign it.
		if f == signer.FormatFacturae {
			if err := facturae.Check(in.Content, xades.Limits{MaxBytes: int(lim.MaxDocBytes)}); err != nil {
				return nil, &Error{Code: CodeInvalidDocument, Field: field + ".content", Message: field + ": facturae: " + err.Error()}
			}
		}
	case in.Digest != nil:
		if len(in.Digest) != h.Size() {
			return nil, &Error{Code: CodeBadDigest, Field: field + ".digest",
				Message: fmt.Sprintf("%s.digest is %d bytes; a %s digest is %d bytes", field, len(in.Digest), hname, h.Size())}
		}
		d.Digest = in.Digest
		if f == "" {
			if f = s.formats.For(signer.DocumentType(in.MediaType)); f == signer.FormatPAdES {
				f = signer.FormatCAdES
			}
		}
		if f == signer.FormatPAdES {
			return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".format",
				Message: field + ": pades needs the whole PDF, not its digest"}
		}
		if f == signer.FormatFacturae {
			return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".format",
				Message: field + ": facturae puts the signature inside the invoice, so it needs the content, not its digest"}
		}
		if f == signer.FormatASiCSCAdES || f == signer.FormatASiCSXAdES || f == signer.FormatASiCEXAdES {
			return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".format",
				Message: fmt.Sprintf("%s: %s puts the document in the container, so it needs the content, not its digest", field, f)}
		}
	default:
		return nil, invalid(field, "give the content or the digest")
	}
	d.Format = string(f)
	if d.SignOptions, err = s.signOptionsFor(portalID, field, in, f, d, lim.MaxDocBytes); err != nil {
		return nil, err
	}
	if in.Appearance != nil {
		if f != signer.FormatPAdES {
			return nil, invalid(field+".visible_signature", "only a pades signature is drawn on the page, this one is %s", f)
		}
		if err := in.Appearance.check(field); err != nil {
			return nil, err
		}
		if d.Appearance, err = json.Marshal(in.Appearance); err != nil {
			return nil, fmt.Errorf("visible signature: %w", err)
		}
	}
	return d, nil
}

// checkCitizen refuses, at creation, a citizen who could not approve:
// unknown, basic level, locked, or with no certificate and none to be had.
func (s *Service) checkCitizen(ctx context.Context, id string) error {
	c, err := s.opt.Citizens.Citizen(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, registry.ErrNotFound) {
		return refuse(CodeUnknownCitizen, "no citizen is registered in Cl@ve with that DNI/NIE")
	}
	if err != nil {
		return fail(CodeUnavailable, "the citizen registry failed; retry", err)
	}
	switch c.Status {
	case registry.StatusRemoved:
		return refuse(CodeUnknownCitizen, "no citizen is registered in Cl@ve with that DNI/NIE")
	case registry.StatusLocked:
		return refuse(CodeCredentialLocked, "the citizen's Cl@ve Permanente password is locked after repeated failures; "+
			"they must get a new activation code at a registry office or register again with an electronic certificate or DNIe")
	}
	if err := policy.MaySign(policy.Level(c.Level), c.Status); err != nil {
		var r *policy.Refusal
		if errors.As(err, &r) && r.Rule == policy.RuleAdvancedRequired {
			return &Error{Code: CodeWeakRegistration, Message: r.Reason, Err: err}
		}
		return &Error{Code: CodeForbidden, Message: err.Error(), Err: err}
	}
	_, err = s.signingCertificate(ctx, id)
	return err
}

// signingCertificate returns the citizen's valid certificate, or nil if
// one will be issued on approval, or the refusal if neither.
func (s *Service) signingCertificate(ctx context.Context, id string) (*ca.Certificate, error) {
	certs, err := s.opt.Certificates.Certificates(ctx, ca.ListOptions{Citizen: id, Limit: 1000})
	if err != nil {
		return nil, fail(CodeUnavailable, "the certificate authority failed; retry", err)
	}
	now := s.now()
	var latest *ca.Certificate
	for _, c := range certs {
		if c.Status == store.CertValid && c.Cert != nil && now.Before(c.NotAfter) {
			return c, nil
		}
		if latest == nil || c.CreatedAt.After(latest.CreatedAt) {
			latest = c
		}
	}
	// A certificate revoked because its key was compromised is not
	// replaced silently: a registrar issues the next one after checking
	// the citizen's identity.
	if latest != nil && latest.Status == store.CertRevoked && latest.Reason == ca.ReasonKeyCompromise {
		return nil, refuse(CodeCertificateBlocked, "the citizen's signing certificate was revoked after a key compromise; "+
			"a new one must be issued at a registry office before signing")
	}
	if s.opt.Certificates.Mode() == ca.ModeExternal {
		return nil, refuse(CodeNoCertificate, "the citizen has no valid signing certificate and the external certificate authority has not issued one yet")
	}
	if s.opt.Certificates.Issuing() == nil {
		return nil, refuse(CodeNoCertificate, "the citizen has no valid signing certificate and the certificate authority cannot issue one now")
	}
	return nil, nil
}

// requestHash fingerprints a creation request, to tell a retry from a
// different request that reuses its idempotency key.
func requestHash(citizen string, req CreateRequest, level signer.Level, docs []*store.Document) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %t %q %d %t\n", citizen, req.OKURL, req.ErrorURL, req.StopOnError, level, len(docs), req.draft)
	for _, d := range docs {
		fmt.Fprintf(h, "%q %q %q %q %x\n", d.Name, d.MediaType, d.Format, d.Hash, d.Digest)
		if d.SignOptions != nil {
			fmt.Fprintf(h, "options %x\n", sha256.Sum256(d.SignOptions))
		}
		if len(d.Appearance) > 0 {
			fmt.Fprintf(h, "appearance %x\n", d.Appearance)
		}
	}
	return h.Sum(nil)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// newID is 128 random bits in hex: the transaction id is also the
// capability in the citizen's URL, so it must not be guessable.
func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("transaction id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// validID reports whether id could be a transaction id, so junk never
// reaches the store.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// unsafeNameRune finds the first character a document name must not
// hold: C0 and C1 controls (NUL included) and DEL, which can cut or
// garble the name where it is shown or logged, and the bidirectional
// formatting characters, with which "x\u202egpj.exe" shows as
// "xexe.jpg" on the consent page: the citizen must read the name the
// portal sent, in the order it was sent.
func unsafeNameRune(name string) (rune, bool) {
	for _, r := range name {
		switch {
		case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
			return r, true
		case r >= 0x202a && r <= 0x202e, // embeddings and overrides
			r >= 0x2066 && r <= 0x2069,            // isolates
			r == 0x200e, r == 0x200f, r == 0x061c: // LRM, RLM, ALM
			return r, true
		}
	}
	return 0, false
}

// BaseURL is the public URL approval links start with.
func (s *Service) BaseURL() string { return s.opt.BaseURL }
