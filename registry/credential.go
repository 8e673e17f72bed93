package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/audit"
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
func (r *Registry) checkCode(ctx context.Context, citizenID, kind, typed string) (*store.Code, error) {
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
func (r *Registry) SetPassword(ctx context.Context, id, activationCode, password string) error {
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
// wrong password give the same error; after MaxFailures wrong passwords
// in a row the credential locks and ErrLocked is returned until a new
// activation code is used.
func (r *Registry) Authenticate(ctx context.Context, id, password string) (*store.Citizen, error) {
	// Taken before the lookup, so that a busy server refuses known and
	// unknown DNIs alike.
	release, err := r.passwordSlot(ctx)
	if err != nil {
		r.m.logins.WithLabelValues("busy").Inc()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer release() // released early after the check; this covers the returns before it
	c, cred, err := r.authLookup(ctx, id)
	if err != nil {
		if errors.Is(err, ErrBadCredentials) {
			// Same cost as a real check, so timing does not tell which
			// DNIs are registered.
			checkPassword(r.dummyHash, password)
			r.m.logins.WithLabelValues("bad").Inc()
		} else {
			r.m.logins.WithLabelValues("error").Inc()
		}
		return nil, err
	}
	if cred.Locked() {
		r.m.logins.WithLabelValues("locked").Inc()
		return nil, r.lockedErr()
	}
	ok, err := checkPassword(cred.Hash, password)
	release()
	if err != nil {
		r.m.logins.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("authenticate %s: %w", c.ID, err)
	}
	if !ok {
		now := r.now().UTC()
		cred, err := r.st.CredentialFailed(ctx, c.ID, r.opt.MaxFailures, now)
		if err != nil {
			return nil, fmt.Errorf("authenticate %s: %w", c.ID, err)
		}
		if cred.Locked() {
			if c.Status == StatusActive {
				c.Status, c.UpdatedAt = StatusLocked, now
				if err := r.st.UpdateCitizen(ctx, c); err != nil {
					return nil, fmt.Errorf("authenticate %s: %w", c.ID, err)
				}
			}
			r.log.WarnContext(ctx, "permanent password locked", "citizen", c.ID, "failures", cred.Failures)
			r.record(ctx, &audit.Record{Event: audit.CitizenLocked, Outcome: audit.Success, Actor: citizenActor(c.ID), Citizen: c.ID,
				Reason: "repeated wrong passwords", Details: map[string]string{"failures": fmt.Sprint(cred.Failures)}})
			r.m.logins.WithLabelValues("locked").Inc()
			return nil, r.lockedErr()
		}
		r.m.logins.WithLabelValues("bad").Inc()
		return nil, ErrBadCredentials
	}
	if cred.Failures > 0 {
		if err := r.st.CredentialSucceeded(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("authenticate %s: %w", c.ID, err)
		}
	}
	r.m.logins.WithLabelValues("ok").Inc()
	return c, nil
}

func (r *Registry) authLookup(ctx context.Context, id string) (*store.Citizen, *store.Credential, error) {
	nid, err := NormalizeID("id", id)
	if err != nil {
		return nil, nil, err
	}
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

func (r *Registry) lockedErr() error {
	return fmt.Errorf("%w (%d wrong passwords in a row): get a new activation code at a registry office, or register again with your electronic certificate or DNIe",
		ErrLocked, r.opt.MaxFailures)
}
