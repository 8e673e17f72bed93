package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/store"
)

// checkCode finds which of a citizen's codes of kind matches the typed
// code, in constant time per candidate, and spends it. A reused or expired
// code is told apart from a wrong one, since a citizen can do something
// about those.
//
// Wrong guesses are counted but never void a code: activation codes and
// CSVs carry about 80 bits, beyond any online guessing, while voiding
// after a few misses would let anyone who knows a DNI cancel that
// citizen's letter or activation code. (The 4-character SMS codes, which
// can be guessed, are limited per attempt in ConfirmCertificate.)
func (r *Service) checkCode(ctx context.Context, citizenID, kind, typed string) (*store.Code, error) {
	codes, err := r.st.Codes(ctx, citizenID, kind)
	if err != nil {
		return nil, err
	}
	var match, live *store.Code
	now := r.now()
	for _, c := range codes {
		if codeMatches(c.Hash, kind, citizenID, typed) && match == nil {
			match = c
		}
		if live == nil && c.UsedAt.IsZero() && now.Before(c.ExpiresAt) {
			live = c
		}
	}
	switch {
	case match == nil:
		if live != nil {
			n, err := r.st.CodeAttempt(ctx, live.ID)
			if err != nil {
				return nil, err
			}
			if n%r.opt.Attempts.Rules().MaxFailures == 0 {
				r.log.WarnContext(ctx, "repeated wrong codes", "citizen", citizenID, "kind", kind, "attempts", n)
			}
		}
		return nil, ErrCodeInvalid
	case !match.UsedAt.IsZero():
		return nil, ErrCodeUsed
	case !now.Before(match.ExpiresAt):
		return nil, ErrCodeExpired
	}
	if err := r.st.UseCode(ctx, match.ID, now.UTC()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, ErrCodeUsed
		}
		return nil, err
	}
	return match, nil
}

// SetPassword sets the citizen's Cl@ve Permanente password with the
// activation code they were given at registration. The code is spent, and
// any lockout is cleared.
func (r *Service) SetPassword(ctx context.Context, id, activationCode, password string) error {
	id, err := NormalizeID("id", id)
	if err != nil {
		return err
	}
	if cleanCode(activationCode) == "" {
		return fieldErr("activation_code", "is required")
	}
	if err := checkPasswordRules(password); err != nil {
		return err
	}
	c, err := r.st.Citizen(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("set password: %w", ErrCodeInvalid)
	}
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if c.Status == StatusRemoved {
		return fmt.Errorf("set password: %w", ErrRemoved)
	}
	if _, err := r.checkCode(ctx, id, kindActivation, activationCode); err != nil {
		return fmt.Errorf("activation code: %w", err)
	}
	release, err := r.passwordSlot(ctx)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	hash, err := hashPassword(r.opt.Argon2, password)
	release()
	if err != nil {
		return err
	}
	now := r.now().UTC()
	if err := r.st.PutCredential(ctx, &store.Credential{CitizenID: id, Hash: hash, SetAt: now}); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	// The new password starts with a clean count: whoever locked the
	// old one a while did not have the activation code.
	if err := r.opt.PasswordAttempts.Succeed(ctx, policy.PasswordScope(id)); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if c.Status == StatusLocked {
		c.Status, c.UpdatedAt = StatusActive, now
		if err := r.st.UpdateCitizen(ctx, c); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		r.record(ctx, &audit.Record{Event: audit.CitizenUnlocked, Outcome: audit.Success, Actor: citizenActor(id), Citizen: id,
			Reason: "new password set with an activation code"})
	}
	r.log.InfoContext(ctx, "permanent password set", "citizen", id)
	return nil
}

// Authenticate checks a citizen's Cl@ve Permanente password. Wrong DNI and
// wrong password give the same error, ErrBadCredentials, and count the
// same way. Wrong passwords are rate limited, never locked for good
// (NIST SP 800-63B 5.2.2): per DNI/NIE (policy.PasswordScope, registered
// or not) and per client (policy.PasswordClientScope, the address
// WithClient put in ctx), each wrong one delays the next check, twice as
// long each time, and enough of them lock the scope a while. While a
// scope waits, every answer is ErrThrottled, for known and unknown DNIs
// alike, with no password checked; the citizen is told (SMS) once per
// lock. ErrLocked is only for a credential locked by staff or by earlier
// versions, and only once the right password is given, so it tells
// nothing to someone guessing.
func (r *Service) Authenticate(ctx context.Context, id, password string) (*store.Citizen, error) {
	nid, err := NormalizeID("id", id)
	if err != nil {
		r.m.logins.WithLabelValues("bad").Inc()
		return nil, err
	}
	now := r.now().UTC()
	client := clientOf(ctx)
	if client != "" {
		if err := r.opt.ClientAttempts.Check(ctx, policy.PasswordClientScope(client), now); err != nil {
			return nil, r.throttled(ctx, err)
		}
	}
	// The room for the argon2id check is taken before the try is counted
	// and the DNI looked up: a busy server refuses known and unknown DNIs
	// alike, and a refusal for want of room costs the citizen no try.
	release, err := r.passwordSlot(ctx)
	if err != nil {
		r.m.logins.WithLabelValues("busy").Inc()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer release() // released early after the check; this covers the returns before it
	// The try is counted before the password is compared, atomically, so
	// that a burst of guesses sent at once through any node gets no more
	// comparisons than one sent slowly; the right password takes it back.
	scope := policy.PasswordScope(nid)
	f, err := r.opt.PasswordAttempts.Fail(ctx, scope, now)
	if err != nil {
		return nil, r.throttled(ctx, err)
	}
	c, cred, err := r.authLookup(ctx, nid)
	ok := false
	switch {
	case errors.Is(err, ErrBadCredentials):
		// Same cost as a real check, so timing does not tell which DNIs
		// are registered.
		checkPassword(r.dummyHash, password)
	case err != nil:
		r.m.logins.WithLabelValues("error").Inc()
		return nil, err
	default:
		ok, err = checkPassword(cred.Hash, password)
		if err != nil {
			r.m.logins.WithLabelValues("error").Inc()
			return nil, fmt.Errorf("authenticate %s: %w", c.ID, err)
		}
	}
	release()
	if !ok {
		if client != "" {
			if _, err := r.opt.ClientAttempts.Fail(ctx, policy.PasswordClientScope(client), now); err != nil {
				if _, throttled := policy.IsThrottled(err); !throttled {
					r.log.WarnContext(ctx, "password attempts per client not counted", "err", err)
				}
			}
		}
		if f.Locked && c != nil {
			r.passwordLocked(ctx, c, f)
		}
		r.m.logins.WithLabelValues("bad").Inc()
		return nil, ErrBadCredentials
	}
	if err := r.opt.PasswordAttempts.Succeed(ctx, scope); err != nil {
		return nil, fmt.Errorf("authenticate %s: %w", c.ID, err)
	}
	if cred.Locked() {
		r.m.logins.WithLabelValues("locked").Inc()
		return nil, r.lockedErr()
	}
	r.m.logins.WithLabelValues("ok").Inc()
	return c, nil
}

// throttled is the answer while a password scope waits: the refusal's
// time as RetryAfter, the rest the same for every DNI/NIE.
func (r *Service) throttled(ctx context.Context, err error) error {
	ref, ok := policy.IsThrottled(err)
	if !ok {
		r.m.logins.WithLabelValues("error").Inc()
		return fmt.Errorf("authenticate: %w", err)
	}
	r.m.logins.WithLabelValues("throttled").Inc()
	return &errs.Error{Kind: ErrThrottled.Kind, Code: ErrThrottled.Code, Detail: ErrThrottled.Detail,
		RetryAfter: max(time.Second, ref.Until.Sub(r.now()).Round(time.Second)), Err: err}
}

// passwordLocked tells the citizen that wrong passwords locked their
// sign-in a while: the one notice per lock, since only the failure that
// locks gets here. Sent apart from the request, so the answer's timing
// does not tell a registered DNI/NIE from another.
func (r *Service) passwordLocked(ctx context.Context, c *store.Citizen, f policy.AttemptFailure) {
	r.log.WarnContext(ctx, "permanent password locked for a while", "citizen", c.ID, "failures", f.Failures,
		"until", f.LockedUntil.UTC().Format(time.RFC3339))
	r.record(ctx, &audit.Record{Event: audit.CitizenLocked, Outcome: audit.Success, Actor: citizenActor(c.ID), Citizen: c.ID,
		Reason: "repeated wrong passwords (lifts by itself)", Details: map[string]string{"failures": fmt.Sprint(f.Failures),
			"locked_until": f.LockedUntil.UTC().Format(time.RFC3339)}})
	if c.Mobile == "" {
		return
	}
	text := fmt.Sprintf("Cl@ve: %d contraseñas erróneas con su DNI/NIE. El acceso queda bloqueado hasta las %s. Si no ha sido usted, no haga nada: se desbloquea solo.",
		f.Failures, f.LockedUntil.In(r.opt.Hours.Location()).Format("15:04"))
	r.notices.Add(1)
	go func() {
		defer r.notices.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.opt.SMS.Send(ctx, c.Mobile, text); err != nil {
			r.log.WarnContext(ctx, "password lock notice not sent", "citizen", c.ID, "err", err)
		}
	}()
}

// WaitNotices waits for the password-lock notices on their way, for a
// clean shutdown and for tests.
func (r *Service) WaitNotices() { r.notices.Wait() }

type clientKey struct{}

// WithClient returns ctx naming the client (its network address) a
// password check comes from, so that Authenticate limits each client's
// wrong passwords across DNIs/NIEs.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientOf(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

func (r *Service) authLookup(ctx context.Context, nid string) (*store.Citizen, *store.Credential, error) {
	c, err := r.st.Citizen(ctx, nid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrBadCredentials
	}
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate: %w", err)
	}
	if c.Status == StatusRemoved {
		return nil, nil, ErrBadCredentials
	}
	cred, err := r.st.Credential(ctx, nid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrBadCredentials
	}
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate: %w", err)
	}
	return c, cred, nil
}

func (r *Service) lockedErr() error {
	return fmt.Errorf("%w: get a new activation code at a registry office, or register again with your electronic certificate or DNIe",
		ErrLocked)
}
