package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// Citizen statuses.
const (
	StatusActive  = "active"
	StatusLocked  = "locked" // the Cl@ve Permanente password locked itself after repeated failures
	StatusRemoved = "removed"
)

// Sentinel errors callers tell apart with errors.Is. Policy refusals are
// *policy.Refusal (errors.Is policy.ErrRefused); bad input is *FieldError
// (ErrInvalid); outside service hours is *ClosedError (ErrClosed).
var (
	ErrNotFound        = errs.Sentinel(errs.NotFound, "citizen_not_registered", "citizen not registered")
	ErrCodeInvalid     = errs.Sentinel(errs.Invalid, "code_invalid", "code is not valid")
	ErrCodeUsed        = errs.Sentinel(errs.FailedPrecondition, "code_used", "code has already been used")
	ErrCodeExpired     = errs.Sentinel(errs.FailedPrecondition, "code_expired", "code has expired")
	ErrTooManyAttempts = errs.Sentinel(errs.FailedPrecondition, "too_many_attempts", "too many wrong attempts")
	ErrConditions      = errs.Sentinel(errs.FailedPrecondition, "conditions_not_accepted", "the conditions of use must be accepted")
	ErrUntrusted       = errs.Sentinel(errs.Denied, "certificate_untrusted", "certificate not issued by a trusted authority")
	ErrNoFiscalAddress = errs.Sentinel(errs.FailedPrecondition, "no_fiscal_address", "no fiscal address on record")
	ErrBadCredentials  = errors.New("wrong DNI/NIE or password")
	ErrLocked          = errors.New("permanent password locked")
	// ErrThrottled answers a password check while wrong passwords make
	// the DNI/NIE or the client wait (*errs.Error with RetryAfter): the
	// same for every DNI/NIE, registered or not.
	ErrThrottled         = errs.Sentinel(errs.TooMany, "login_throttled", "too many wrong passwords: try again later")
	ErrRemoved           = errs.Sentinel(errs.FailedPrecondition, "citizen_removed", "citizen registration removed")
	ErrLettersPending    = errs.Sentinel(errs.TooMany, "letters_pending", "invitation letters already on their way")
	ErrStaffUnidentified = errs.Sentinel(errs.Unauthenticated, "staff_unidentified", "staff member not identified")
)

// Revoker is told when a citizen may no longer hold a signing certificate:
// the CA implements it by revoking the citizen's live certificates (and
// destroying their keys). reason is a CRL reason name such as
// "privilegeWithdrawn" or "cessationOfOperation".
type Revoker interface {
	RevokeCitizen(ctx context.Context, citizenID, reason string) error
}

// Staff is the authenticated staff member behind a request.
type Staff struct {
	Name string
	Role policy.Role
}

// Options configures a Registry. SMS and Hours are required; the rest
// default as documented.
type Options struct {
	SMS        sms.Gateway
	Hours      *Hours         // video-call service hours
	TrustedCAs *x509.CertPool // roots for electronic-certificate registration; nil refuses every certificate
	// Intermediates are CA certificates a client may omit from its chain.
	Intermediates *x509.CertPool
	Revoker       Revoker // nil: no CA wired (level losses are still recorded)
	Audit         Auditor // nil: registrations are not audited
	Log           *slog.Logger
	Registerer    prometheus.Registerer
	Clock         func() time.Time

	Argon2 Argon2 // zero: DefaultArgon2
	// MaxFailures wrong passwords for one DNI/NIE lock its sign-in for
	// a while (PasswordAttempts); 0: 5.
	MaxFailures int
	// PasswordAttempts limits wrong passwords per DNI/NIE
	// (policy.PasswordScope) and ClientAttempts per client
	// (policy.PasswordClientScope). Nil: policy.DefaultPasswordRules
	// (with MaxFailures) and policy.DefaultPasswordClientRules on the
	// store.
	PasswordAttempts *policy.Attempts
	ClientAttempts   *policy.Attempts
	ActivationTTL    time.Duration // 0: 30 days
	LetterTTL        time.Duration // 0: 90 days
	SMSCodeTTL       time.Duration // 0: 10 minutes
	ChallengeTTL     time.Duration // 0: 5 minutes
	// Attempts counts wrong registration SMS codes per citizen
	// (policy.RegistrationScope), by the rule the signature codes follow:
	// firmad passes the one it gives every service. Nil: the policy's
	// defaults on the store, which must then be a policy.AttemptStore
	// (every store.Store is).
	Attempts *policy.Attempts
	// CodeRetention is how long expired codes are kept, so that a late
	// citizen is told "expired" rather than "wrong"; 0: 30 days.
	CodeRetention time.Duration
	// ServiceURL is where citizens set their password; printed on the
	// confirmation PDF and the letters. Empty: the REST route on localhost.
	ServiceURL string
	// PasswordGate bounds the argon2id hashes computed at once, each
	// holding Argon2.Memory (or the stored hash's cost): its size counts
	// checks. A check that finds no room within its wait fails with the
	// gate's Unavailable error (RetryAfter set). Nil: unbounded.
	PasswordGate *limit.Gate
}

// Service is the citizen registry.
type Service struct {
	st  store.RegistryStore
	opt Options
	log *slog.Logger
	now func() time.Time
	m   *metrics
	// notices are the password-lock SMS on their way.
	notices sync.WaitGroup
	// dummyHash is checked against when a citizen has no credential, so
	// that a login for an unknown DNI costs the same as a wrong password.
	dummyHash string
}

// New returns a registry on st.
func New(st store.RegistryStore, opt Options) (*Service, error) {
	if opt.SMS == nil {
		return nil, errors.New("registry: an SMS gateway is required")
	}
	if opt.Hours == nil {
		h, err := ParseHours(DefaultHoursSpec, DefaultZone)
		if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		opt.Hours = h
	}
	if opt.Argon2 == (Argon2{}) {
		opt.Argon2 = DefaultArgon2
	}
	if opt.MaxFailures <= 0 {
		opt.MaxFailures = 5
	}
	if opt.ActivationTTL <= 0 {
		opt.ActivationTTL = 30 * 24 * time.Hour
	}
	if opt.LetterTTL <= 0 {
		opt.LetterTTL = 90 * 24 * time.Hour
	}
	if opt.SMSCodeTTL <= 0 {
		opt.SMSCodeTTL = 10 * time.Minute
	}
	if opt.ChallengeTTL <= 0 {
		opt.ChallengeTTL = 5 * time.Minute
	}
	if opt.Attempts == nil {
		as, ok := st.(policy.AttemptStore)
		if !ok {
			return nil, errors.New("registry: an attempt policy is required (the store keeps no attempt counters)")
		}
		opt.Attempts = policy.NewAttempts(as, policy.AttemptRules{})
	}
	if opt.PasswordAttempts == nil || opt.ClientAttempts == nil {
		as, ok := st.(policy.AttemptStore)
		if !ok {
			return nil, errors.New("registry: password attempt policies are required (the store keeps no attempt counters)")
		}
		if opt.PasswordAttempts == nil {
			rules := policy.DefaultPasswordRules()
			rules.MaxFailures = opt.MaxFailures
			opt.PasswordAttempts = policy.NewAttempts(as, rules)
		}
		if opt.ClientAttempts == nil {
			opt.ClientAttempts = policy.NewAttempts(as, policy.DefaultPasswordClientRules())
		}
	}
	if opt.CodeRetention <= 0 {
		opt.CodeRetention = 30 * 24 * time.Hour
	}
	if opt.ServiceURL == "" {
		opt.ServiceURL = "http://127.0.0.1:7780/v1/registry/password"
	}
	r := &Service{st: st, opt: opt, log: opt.Log, now: opt.Clock}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	m, err := newMetrics(opt.Registerer)
	if err != nil {
		return nil, err
	}
	r.m = m
	if r.dummyHash, err = hashPassword(opt.Argon2, "dummy-password-never-matches"); err != nil {
		return nil, err
	}
	return r, nil
}

// Hours returns the video-call service hours.
func (r *Service) Hours() *Hours { return r.opt.Hours }

// VideoCallOpen reports, on the registry's clock, whether video-call
// registration is open now and when its next window starts.
func (r *Service) VideoCallOpen() (bool, time.Time) {
	now := r.now()
	return r.opt.Hours.Open(now), r.opt.Hours.Next(now)
}

// Person is the identity and contact data given at registration.
type Person struct {
	ID        string // DNI or NIE
	GivenName string
	Surnames  string
	Mobile    string
	Email     string
}

// normalize validates every field, reporting the first bad one.
func (p Person) normalize() (Person, error) {
	var err error
	if p.ID, err = NormalizeID("id", p.ID); err != nil {
		return p, err
	}
	if p.GivenName, err = NormalizeName("given_name", p.GivenName); err != nil {
		return p, err
	}
	if p.Surnames, err = NormalizeName("surnames", p.Surnames); err != nil {
		return p, err
	}
	if p.Mobile, err = NormalizeMobile("mobile", p.Mobile); err != nil {
		return p, err
	}
	if p.Email, err = NormalizeEmail("email", p.Email); err != nil {
		return p, err
	}
	return p, nil
}

// Confirmation is the outcome of a completed registration. ActivationCode
// is shown to the citizen once (and printed on the PDF); only its hash is
// kept.
type Confirmation struct {
	Citizen           *store.Citizen
	Upgraded          bool // an existing basic citizen reached advanced
	ActivationCode    string
	ActivationExpires time.Time
	ServiceURL        string
}

// Citizen returns a registered citizen by DNI/NIE.
func (r *Service) Citizen(ctx context.Context, id string) (*store.Citizen, error) {
	id, err := NormalizeID("id", id)
	if err != nil {
		return nil, err
	}
	c, err := r.st.Citizen(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Both sentinels, so callers holding only the store's (the CA)
		// recognise it too.
		return nil, fmt.Errorf("citizen %s: %w (%w)", id, ErrNotFound, store.ErrNotFound)
	}
	return c, err
}

// Citizens lists citizens ordered by DNI/NIE.
func (r *Service) Citizens(ctx context.Context, q store.CitizenQuery) ([]*store.Citizen, error) {
	if q.Level != "" {
		if _, err := policy.ParseLevel(q.Level); err != nil {
			return nil, fieldErr("level", "%v", err)
		}
	}
	switch q.Status {
	case "", StatusActive, StatusLocked, StatusRemoved:
	default:
		return nil, fieldErr("status", "unknown status %q (want active, locked or removed)", q.Status)
	}
	if q.Limit > 1000 {
		q.Limit = 1000
	}
	return r.st.Citizens(ctx, q)
}

// MaySign is the policy decision for Cl@ve Firma: nil for an active
// advanced citizen, a *policy.Refusal saying how to reach advanced level
// otherwise.
func (r *Service) MaySign(ctx context.Context, id string) error {
	c, err := r.Citizen(ctx, id)
	if err != nil {
		return err
	}
	return policy.MaySign(policy.Level(c.Level), c.Status)
}

// RegisterInPerson records a registrar's face-to-face registration:
// advanced level, and an activation code for the permanent password.
func (r *Service) RegisterInPerson(ctx context.Context, staff Staff, p Person) (*Confirmation, error) {
	if err := r.staffMay(staff, policy.InPerson); err != nil {
		r.denied(ctx, staffActor(staff), p.ID, policy.InPerson, err)
		return nil, r.fail(policy.InPerson, err)
	}
	c, err := r.enrolPerson(ctx, p, policy.InPerson, staffActor(staff))
	r.denied(ctx, staffActor(staff), p.ID, policy.InPerson, err)
	return c, r.fail(policy.InPerson, err)
}

// RegisterVideoCall records a registration completed by a video agent,
// inside service hours only: basic level.
func (r *Service) RegisterVideoCall(ctx context.Context, staff Staff, p Person) (*Confirmation, error) {
	if err := r.staffMay(staff, policy.VideoCall); err != nil {
		r.denied(ctx, staffActor(staff), p.ID, policy.VideoCall, err)
		return nil, r.fail(policy.VideoCall, err)
	}
	if now := r.now(); !r.opt.Hours.Open(now) {
		err := &ClosedError{Service: "video-call registration", Hours: r.opt.Hours, Next: r.opt.Hours.Next(now)}
		r.denied(ctx, staffActor(staff), p.ID, policy.VideoCall, err)
		return nil, r.fail(policy.VideoCall, err)
	}
	c, err := r.enrolPerson(ctx, p, policy.VideoCall, staffActor(staff))
	r.denied(ctx, staffActor(staff), p.ID, policy.VideoCall, err)
	return c, r.fail(policy.VideoCall, err)
}

func (r *Service) staffMay(staff Staff, m policy.Method) error {
	if staff.Name == "" {
		return ErrStaffUnidentified
	}
	return policy.MayRegister(staff.Role, m)
}

func (r *Service) enrolPerson(ctx context.Context, p Person, m policy.Method, by audit.Actor) (*Confirmation, error) {
	p, err := p.normalize()
	if err != nil {
		return nil, err
	}
	return r.enrol(ctx, p, m, by)
}

// enrol creates or upgrades the citizen and issues an activation code. A
// method never lowers a citizen's level: that is a refusal, not a silent
// change.
func (r *Service) enrol(ctx context.Context, p Person, m policy.Method, by audit.Actor) (*Confirmation, error) {
	now := r.now().UTC()
	level := m.Grants()
	conf := &Confirmation{ServiceURL: r.opt.ServiceURL}
	c, err := r.st.Citizen(ctx, p.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c = &store.Citizen{ID: p.ID, GivenName: p.GivenName, Surnames: p.Surnames, Mobile: p.Mobile, Email: p.Email,
			Level: string(level), Method: string(m), Status: StatusActive, CreatedAt: now, UpdatedAt: now, LevelAt: now}
		if err := r.st.CreateCitizen(ctx, c); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil, fmt.Errorf("register %s: registered concurrently, retry: %w", p.ID, err)
			}
			return nil, fmt.Errorf("register %s: %w", p.ID, err)
		}
	case err != nil:
		return nil, fmt.Errorf("register %s: %w", p.ID, err)
	default:
		if c.Status != StatusRemoved {
			if _, err := policy.ChangeLevel(policy.Level(c.Level), m); err != nil {
				return nil, err
			}
		}
		conf.Upgraded = c.Status != StatusRemoved && policy.Level(c.Level).Rank() < level.Rank()
		if c.Level != string(level) || c.Status == StatusRemoved {
			c.LevelAt = now
		}
		c.GivenName, c.Surnames, c.Mobile, c.Email = p.GivenName, p.Surnames, p.Mobile, p.Email
		c.Level, c.Method, c.UpdatedAt = string(level), string(m), now
		if c.Status == StatusRemoved {
			c.Status = StatusActive
		}
		if err := r.st.UpdateCitizen(ctx, c); err != nil {
			return nil, fmt.Errorf("register %s: %w", p.ID, err)
		}
	}
	conf.Citizen = c
	if err := r.issueActivation(ctx, conf); err != nil {
		return nil, err
	}
	r.m.registrations.WithLabelValues(string(m), "ok").Inc()
	r.log.InfoContext(ctx, "citizen registered", "citizen", c.ID, "method", m, "level", c.Level, "upgraded", conf.Upgraded, "by", by.ID)
	ev := audit.CitizenRegistered
	if conf.Upgraded {
		ev = audit.CitizenUpgraded
	}
	r.record(ctx, &audit.Record{Event: ev, Outcome: audit.Success, Actor: by, Citizen: c.ID,
		Details: map[string]string{"method": string(m), "level": c.Level}})
	return conf, nil
}

// issueActivation makes a new activation code, voiding earlier unused
// ones so that only the newest printed code works.
func (r *Service) issueActivation(ctx context.Context, conf *Confirmation) error {
	now := r.now().UTC()
	old, err := r.st.Codes(ctx, conf.Citizen.ID, kindActivation)
	if err != nil {
		return fmt.Errorf("activation code: %w", err)
	}
	for _, o := range old {
		if o.UsedAt.IsZero() {
			if err := r.st.UseCode(ctx, o.ID, now); err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("activation code: %w", err)
			}
		}
	}
	code, err := randomCode(readableAlphabet, activationLength)
	if err != nil {
		return err
	}
	id, err := randomID()
	if err != nil {
		return err
	}
	rec := &store.Code{ID: id, Kind: kindActivation, CitizenID: conf.Citizen.ID, Hash: codeHash(kindActivation, conf.Citizen.ID, code),
		CreatedAt: now, ExpiresAt: now.Add(r.opt.ActivationTTL)}
	if err := r.st.CreateCode(ctx, rec); err != nil {
		return fmt.Errorf("activation code: %w", err)
	}
	conf.ActivationCode, conf.ActivationExpires = groupCode(code), rec.ExpiresAt
	return nil
}

// ReissueActivation gives a registered citizen a new activation code (a
// forgotten or locked password), after a registrar has checked their ID.
func (r *Service) ReissueActivation(ctx context.Context, staff Staff, id string) (*Confirmation, error) {
	if staff.Name == "" {
		return nil, ErrStaffUnidentified
	}
	if err := policy.MayManage(staff.Role); err != nil {
		return nil, err
	}
	c, err := r.Citizen(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == StatusRemoved {
		return nil, fmt.Errorf("citizen %s: %w", c.ID, ErrRemoved)
	}
	conf := &Confirmation{Citizen: c, ServiceURL: r.opt.ServiceURL}
	if err := r.issueActivation(ctx, conf); err != nil {
		return nil, err
	}
	r.log.InfoContext(ctx, "activation code reissued", "citizen", c.ID, "by", staff.Name)
	return conf, nil
}

// Downgrade lowers an advanced citizen to basic, an explicit registrar act
// with a reason (e.g. the identity check is disputed). The citizen's
// signing certificates are revoked.
func (r *Service) Downgrade(ctx context.Context, staff Staff, id, reason string) (*store.Citizen, error) {
	if staff.Name == "" {
		return nil, ErrStaffUnidentified
	}
	if err := policy.MayManage(staff.Role); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fieldErr("reason", "is required: say why the level is lowered")
	}
	c, err := r.Citizen(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status == StatusRemoved {
		return nil, fmt.Errorf("citizen %s: %w", c.ID, ErrRemoved)
	}
	if c.Level != string(policy.Advanced) {
		return nil, fieldErr("id", "citizen %s is already at the basic level", c.ID)
	}
	now := r.now().UTC()
	c.Level, c.LevelAt, c.UpdatedAt = string(policy.Basic), now, now
	if err := r.st.UpdateCitizen(ctx, c); err != nil {
		return nil, fmt.Errorf("downgrade %s: %w", c.ID, err)
	}
	r.log.InfoContext(ctx, "citizen downgraded to basic", "citizen", c.ID, "by", staff.Name, "reason", reason)
	return c, r.revoke(ctx, c.ID, "privilegeWithdrawn")
}

// Remove ends a citizen's registration: they can no longer log in or
// sign, and their signing certificates are revoked. The record is kept
// (marked removed) for the audit trail; registering again reactivates it.
func (r *Service) Remove(ctx context.Context, staff Staff, id, reason string) (*store.Citizen, error) {
	if staff.Name == "" {
		return nil, ErrStaffUnidentified
	}
	if err := policy.MayManage(staff.Role); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, fieldErr("reason", "is required: say why the registration is removed")
	}
	c, err := r.Citizen(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status != StatusRemoved {
		now := r.now().UTC()
		c.Status, c.UpdatedAt = StatusRemoved, now
		if err := r.st.UpdateCitizen(ctx, c); err != nil {
			return nil, fmt.Errorf("remove %s: %w", c.ID, err)
		}
		r.log.InfoContext(ctx, "citizen removed", "citizen", c.ID, "by", staff.Name, "reason", reason)
	}
	// Revoked even when already removed, so a failed earlier revocation
	// is retried by removing again.
	return c, r.revoke(ctx, c.ID, "cessationOfOperation")
}

func (r *Service) revoke(ctx context.Context, id, reason string) error {
	if r.opt.Revoker == nil {
		return nil
	}
	if err := r.opt.Revoker.RevokeCitizen(ctx, id, reason); err != nil {
		r.log.ErrorContext(ctx, "revoking certificates of citizen failed", "citizen", id, "err", err)
		return fmt.Errorf("revoke certificates of %s: %w", id, err)
	}
	return nil
}

// Purge deletes expired codes, challenges as soon as they expire (anyone
// may ask for them) and the rest after CodeRetention, and the outbox
// letters whose CSV has expired. firmad runs it hourly.
func (r *Service) Purge(ctx context.Context) (int64, error) {
	now := r.now().UTC()
	a, err := r.st.DeleteCodes(ctx, kindChallenge, now)
	if err != nil {
		return 0, err
	}
	b, err := r.st.DeleteCodes(ctx, "", now.Add(-r.opt.CodeRetention))
	if err != nil {
		return a, err
	}
	c, err := r.st.DeleteLetters(ctx, now.Add(-r.opt.LetterTTL))
	return a + b + c, err
}

// denied audits a registration that policy refused (role, service hours,
// no downgrade), when the DNI/NIE is valid enough to name the citizen.
// Other errors are the caller's typos or failures, not decisions.
func (r *Service) denied(ctx context.Context, by audit.Actor, rawID string, m policy.Method, err error) {
	var pr *policy.Refusal
	var ce *ClosedError
	reason := ""
	switch {
	case errors.As(err, &pr):
		reason = pr.Rule
	case errors.As(err, &ce):
		reason = "outside_service_hours"
	default:
		return
	}
	id, nerr := NormalizeID("id", rawID)
	if nerr != nil {
		return
	}
	r.record(ctx, &audit.Record{Event: audit.CitizenRegistered, Outcome: audit.Denied, Actor: by, Citizen: id,
		Reason: reason, Details: map[string]string{"method": string(m)}})
}

// fail counts a refused or failed registration and passes err through.
func (r *Service) fail(m policy.Method, err error) error {
	if err == nil {
		return nil
	}
	result := "error"
	var fe *FieldError
	var pr *policy.Refusal
	switch {
	case errors.As(err, &fe):
		result = "invalid"
	case errors.As(err, &pr), errors.Is(err, ErrClosed), errors.Is(err, ErrStaffUnidentified):
		result = "refused"
	case errors.Is(err, ErrCodeInvalid), errors.Is(err, ErrCodeUsed), errors.Is(err, ErrCodeExpired),
		errors.Is(err, ErrTooManyAttempts), errors.Is(err, ErrUntrusted), errors.Is(err, ErrConditions):
		result = "rejected"
	}
	r.m.registrations.WithLabelValues(string(m), result).Inc()
	return err
}
