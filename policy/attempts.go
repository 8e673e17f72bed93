package policy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RuleAttemptsLocked names the refusal of a scope locked by too many wrong
// secrets.
const RuleAttemptsLocked = "attempts_locked"

// OTPScope is the attempt scope of a citizen's SMS-code channel: every
// signature code sent to the citizen's phone, whichever way asked for it
// (the web approval page of a transaction, or any portal's CSC
// credentials/authorize). The scope is what the secret protects, the
// phone, and not the caller: counted per portal or per transaction, the
// guess budget and the SMS sent to one citizen grow with the number of
// portals and transactions.
func OTPScope(citizenID string) string { return "otp:" + citizenID }

// RegistrationScope is the attempt scope of a citizen's registration SMS
// codes. It is a scope of its own, under the same rule: the registration
// code proves a mobile number given in the request, not yet the
// citizen's, so the citizen's signing channel must not lock because
// someone holding the certificate mistypes during a new registration
// (registering again, or changing phone) — and that one lock would then
// let whoever holds the certificate block the citizen's signatures. It is
// per citizen, not per pending registration, so that starting again no
// longer gives fresh tries (or sends another SMS) while it is locked.
func RegistrationScope(citizenID string) string { return "registration:" + citizenID }

// RuleAttemptsDelayed names the refusal of a scope that must wait after a
// wrong secret before the next one is checked (AttemptRules.Delay).
const RuleAttemptsDelayed = "attempts_delayed"

// PasswordScope is the attempt scope of the Cl@ve Permanente password of
// the DNI/NIE id, registered or not: an unregistered DNI/NIE is counted,
// delayed and locked exactly as a registered one, so that the answers
// never tell which DNIs/NIEs are registered.
func PasswordScope(id string) string { return "password:" + id }

// PasswordClientScope is the attempt scope of the passwords one client
// (network address) types, for any DNI/NIE: it slows a client trying one
// password on many DNIs/NIEs, which no per-DNI count sees.
func PasswordClientScope(client string) string { return "password-client:" + client }

// DefaultPasswordRules are the password rules per DNI/NIE (NIST SP
// 800-63B 5.2.2: rate limiting that ends by itself): a delay after each
// wrong password, 1 s doubling up to 1 min, and after 5 within the hour a
// 15-minute lock that lifts by itself. Nothing that anonymous guessing
// reaches locks the citizen for good.
func DefaultPasswordRules() AttemptRules {
	return AttemptRules{MaxFailures: 5, Window: time.Hour, Lockout: 15 * time.Minute, Delay: time.Second, MaxDelay: time.Minute}
}

// DefaultPasswordClientRules are the password rules per client: 30 wrong
// passwords within the hour (for any DNIs/NIEs) lock the client out for
// an hour, with the same growing delay after each from the fifth on.
func DefaultPasswordClientRules() AttemptRules {
	return AttemptRules{MaxFailures: 30, Window: time.Hour, Lockout: time.Hour, Delay: time.Second, MaxDelay: time.Minute, DelayAfter: 4}
}

// AttemptRules is the one rule for secrets that a person types and that
// can be guessed (SMS one-time passwords, registration codes): count the
// wrong ones, lock at a limit, unlock after a while. The zero value of a
// field means its default.
type AttemptRules struct {
	// MaxFailures wrong secrets lock the scope; default 3, the Cl@ve
	// Firma limit the transactions and the registry had.
	MaxFailures int
	// Window is rolling: a failure counts towards the lock until Window
	// has passed without another one. Default 15 minutes, the same as the
	// lockout, so that waiting out a lockout and trying slowly give the
	// same guess rate: at most MaxFailures-1 per Window.
	Window time.Duration
	// Lockout is how long a locked scope refuses to send or check a
	// secret; default 15 minutes, the CSC lockout it replaces.
	Lockout time.Duration
	// Delay, when set, is how long the scope refuses to check a secret
	// after a wrong one, doubling with each further failure in the
	// window up to MaxDelay (default 1 minute): guessing slows down long
	// before the lock. Zero: no delay (the SMS codes, which cost an SMS
	// each, need none). The first DelayAfter failures are not delayed,
	// so a few typos cost nothing.
	Delay      time.Duration
	MaxDelay   time.Duration
	DelayAfter int
}

// delay is how long a check waits after the failures-th wrong secret.
func (r AttemptRules) delay(failures int) time.Duration {
	n := failures - r.DelayAfter
	if r.Delay <= 0 || n <= 0 {
		return 0
	}
	maxD := r.MaxDelay
	if maxD <= 0 {
		maxD = time.Minute
	}
	d := r.Delay
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// delayedUntil is when st's delay ends; zero if it has none at now.
func (r AttemptRules) delayedUntil(st AttemptState, now time.Time) time.Time {
	if st.Failures == 0 || st.LastFailure.IsZero() {
		return time.Time{}
	}
	if until := st.LastFailure.Add(r.delay(st.Failures)); now.Before(until) {
		return until
	}
	return time.Time{}
}

// DefaultAttemptRules are 3 wrong codes within 15 minutes lock for 15
// minutes.
func DefaultAttemptRules() AttemptRules {
	return AttemptRules{MaxFailures: 3, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
}

// WithDefaults fills unset fields with the defaults.
func (r AttemptRules) WithDefaults() AttemptRules {
	d := DefaultAttemptRules()
	if r.MaxFailures <= 0 {
		r.MaxFailures = d.MaxFailures
	}
	if r.Window <= 0 {
		r.Window = d.Window
	}
	if r.Lockout <= 0 {
		r.Lockout = d.Lockout
	}
	return r
}

// AttemptState is one scope's counter as a store keeps it.
type AttemptState struct {
	Failures    int       // wrong secrets counted in the current window
	LastFailure time.Time // the last one counted; zero if none
	LockedUntil time.Time // zero unless the scope locked
}

// current is st as it stands at now: a lockout that ended, or a window
// that passed without a failure, counts nothing any more.
func (r AttemptRules) current(st AttemptState, now time.Time) AttemptState {
	r = r.WithDefaults()
	if !st.LockedUntil.IsZero() {
		if now.Before(st.LockedUntil) {
			return st
		}
		// The lockout is over: a whole new budget.
		return AttemptState{}
	}
	if st.LastFailure.IsZero() || !now.Before(st.LastFailure.Add(r.Window)) {
		return AttemptState{}
	}
	return st
}

// Locked reports whether st locks its scope at now, and until when.
func (r AttemptRules) Locked(st AttemptState, now time.Time) (time.Time, bool) {
	st = r.current(st, now)
	return st.LockedUntil, !st.LockedUntil.IsZero()
}

// Left is how many wrong secrets st still allows at now before the lock.
func (r AttemptRules) Left(st AttemptState, now time.Time) int {
	r = r.WithDefaults()
	st = r.current(st, now)
	if !st.LockedUntil.IsZero() {
		return 0
	}
	return max(0, r.MaxFailures-st.Failures)
}

// AttemptFailure is what one wrong secret did.
type AttemptFailure struct {
	Failures    int       // counted in the window, this one included
	Left        int       // wrong secrets still allowed before the lock
	Locked      bool      // this one locked the scope
	LockedUntil time.Time // when the lock ends, if Locked
}

// Fail is st after a wrong secret at now. A scope locked already is not
// counted: the secret should not have been checked, and the refusal is
// the lock's.
func (r AttemptRules) Fail(st AttemptState, now time.Time) (AttemptState, AttemptFailure, *Refusal) {
	r = r.WithDefaults()
	st = r.current(st, now)
	if !st.LockedUntil.IsZero() {
		return st, AttemptFailure{Failures: st.Failures, LockedUntil: st.LockedUntil}, r.refusal(st.LockedUntil)
	}
	if until := r.delayedUntil(st, now); !until.IsZero() {
		return st, AttemptFailure{Failures: st.Failures, Left: max(0, r.MaxFailures-st.Failures)}, delayRefusal(until)
	}
	st.Failures++
	st.LastFailure = now
	f := AttemptFailure{Failures: st.Failures, Left: max(0, r.MaxFailures-st.Failures)}
	if st.Failures >= r.MaxFailures {
		st.LockedUntil = now.Add(r.Lockout)
		f.Locked, f.LockedUntil = true, st.LockedUntil
	}
	return st, f, nil
}

// Check refuses while st locks its scope at now, or while the delay
// after its last wrong secret runs.
func (r AttemptRules) Check(st AttemptState, now time.Time) *Refusal {
	if until, locked := r.Locked(st, now); locked {
		return r.refusal(until)
	}
	if until := r.WithDefaults().delayedUntil(r.current(st, now), now); !until.IsZero() {
		return delayRefusal(until)
	}
	return nil
}

func delayRefusal(until time.Time) *Refusal {
	return &Refusal{Rule: RuleAttemptsDelayed, Until: until, Reason: fmt.Sprintf(
		"a wrong secret was entered: the next one is checked from %s UTC", until.UTC().Format("2006-01-02 15:04:05"))}
}

// IsThrottled reports whether err refuses a scope for now, locked or
// delayed, and returns the refusal (Until says when to try again).
func IsThrottled(err error) (*Refusal, bool) {
	var r *Refusal
	if errors.As(err, &r) && (r.Rule == RuleAttemptsLocked || r.Rule == RuleAttemptsDelayed) {
		return r, true
	}
	return nil, false
}

func (r AttemptRules) refusal(until time.Time) *Refusal {
	r = r.WithDefaults()
	return &Refusal{Rule: RuleAttemptsLocked, Until: until, Reason: fmt.Sprintf(
		"%d wrong codes were entered: no new code is sent or checked until %s UTC; wait until then and ask for a new code",
		r.MaxFailures, until.UTC().Format("2006-01-02 15:04:05"))}
}

// AttemptStore keeps one AttemptState per scope, durably. The fields are
// passed as stdlib values so that a store implements it without importing
// this package.
type AttemptStore interface {
	// Attempts returns the scope's counter; zeros if it has none.
	Attempts(ctx context.Context, scope string) (failures int, lastFailure, lockedUntil time.Time, err error)
	// UpdateAttempts reads the scope's counter (zeros if none), calls fn
	// with it and stores what fn returns, as one atomic step with respect
	// to every other call on the scope from any process sharing the store.
	// fn is pure and may be called again if the store retries.
	UpdateAttempts(ctx context.Context, scope string,
		fn func(failures int, lastFailure, lockedUntil time.Time) (int, time.Time, time.Time)) error
	// ResetAttempts forgets the scope's counter.
	ResetAttempts(ctx context.Context, scope string) error
}

// Attempts applies AttemptRules to counters kept in an AttemptStore, so
// that every node sharing the store counts the same wrong secrets.
type Attempts struct {
	st    AttemptStore
	rules AttemptRules
}

// NewAttempts returns the attempt policy with rules (zero fields are the
// defaults) on st.
func NewAttempts(st AttemptStore, rules AttemptRules) *Attempts {
	return &Attempts{st: st, rules: rules.WithDefaults()}
}

// Rules are the rules in force.
func (a *Attempts) Rules() AttemptRules { return a.rules }

// State is the scope's counter as it stands at now.
func (a *Attempts) State(ctx context.Context, scope string, now time.Time) (AttemptState, error) {
	n, last, until, err := a.st.Attempts(ctx, scope)
	if err != nil {
		return AttemptState{}, fmt.Errorf("attempts %s: %w", scope, err)
	}
	return a.rules.current(AttemptState{Failures: n, LastFailure: last, LockedUntil: until}, now), nil
}

// Left is how many wrong secrets the scope still allows at now.
func (a *Attempts) Left(ctx context.Context, scope string, now time.Time) (int, error) {
	st, err := a.State(ctx, scope, now)
	if err != nil {
		return 0, err
	}
	return a.rules.Left(st, now), nil
}

// Check returns a *Refusal while the scope is locked at now: neither send
// nor check a secret then.
func (a *Attempts) Check(ctx context.Context, scope string, now time.Time) error {
	st, err := a.State(ctx, scope, now)
	if err != nil {
		return err
	}
	if r := a.rules.Check(st, now); r != nil {
		return r
	}
	return nil
}

// Fail counts a wrong secret on the scope, atomically across every
// process sharing the store, and locks it at the limit. If the scope was
// locked already (another node's failure got there first), nothing is
// counted and the error is the lock's *Refusal.
func (a *Attempts) Fail(ctx context.Context, scope string, now time.Time) (AttemptFailure, error) {
	var (
		res     AttemptFailure
		refusal *Refusal
	)
	err := a.st.UpdateAttempts(ctx, scope, func(n int, last, until time.Time) (int, time.Time, time.Time) {
		st, f, r := a.rules.Fail(AttemptState{Failures: n, LastFailure: last, LockedUntil: until}, now)
		res, refusal = f, r
		return st.Failures, st.LastFailure, st.LockedUntil
	})
	if err != nil {
		return AttemptFailure{}, fmt.Errorf("attempts %s: %w", scope, err)
	}
	if refusal != nil {
		return res, refusal
	}
	return res, nil
}

// ErrWrongCode is Verify's answer to a secret that did not match; the
// AttemptFailure returned with it says what it did to the scope.
var ErrWrongCode = errors.New("wrong code")

// Verify checks a secret on the scope in one atomic step of the store:
// refused unchecked while locked (the lock's *Refusal), reset if match
// reports the secret right (nil), counted and locked at the limit if not
// (ErrWrongCode). Because the check, the comparison and the count are
// one step under the scope's lock, concurrent guesses through any node
// take turns: the secret is compared at most MaxFailures times wrongly
// before the lock, however many arrive at once; Check-then-Fail would
// let a burst all pass Check before the first Fail. match must be pure
// (a constant-time comparison) and may be called more than once.
func (a *Attempts) Verify(ctx context.Context, scope string, now time.Time, match func() bool) (AttemptFailure, error) {
	var (
		res     AttemptFailure
		refusal *Refusal
		ok      bool
	)
	err := a.st.UpdateAttempts(ctx, scope, func(n int, last, until time.Time) (int, time.Time, time.Time) {
		st := AttemptState{Failures: n, LastFailure: last, LockedUntil: until}
		res, refusal, ok = AttemptFailure{}, nil, false
		if r := a.rules.Check(st, now); r != nil {
			refusal = r
			return n, last, until
		}
		if match() {
			ok = true
			return 0, time.Time{}, time.Time{}
		}
		next, f, r := a.rules.Fail(st, now)
		res, refusal = f, r
		return next.Failures, next.LastFailure, next.LockedUntil
	})
	switch {
	case err != nil:
		return AttemptFailure{}, fmt.Errorf("attempts %s: %w", scope, err)
	case refusal != nil:
		return res, refusal
	case ok:
		return AttemptFailure{}, nil
	}
	return res, ErrWrongCode
}

// Succeed forgets the scope's failures: the right secret was given.
func (a *Attempts) Succeed(ctx context.Context, scope string) error {
	if err := a.st.ResetAttempts(ctx, scope); err != nil {
		return fmt.Errorf("attempts %s: %w", scope, err)
	}
	return nil
}

// IsLocked reports whether err is an attempt lockout's refusal, and
// returns it.
func IsLocked(err error) (*Refusal, bool) {
	var r *Refusal
	if errors.As(err, &r) && r.Rule == RuleAttemptsLocked {
		return r, true
	}
	return nil, false
}
