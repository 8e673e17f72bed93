package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"strings"

	"github.com/firma-cloud/firma/errs"
)

// DetailKeyChange links the result of a key change (key.generated,
// key.destroyed) to its intent (key.generate_requested,
// key.destroy_requested).
const DetailKeyChange = "key_change"

// NoKey is the key ID of a key record that names no key: the intent to
// generate one, whose ID the HSM has not made yet, or a generation that
// failed.
const NoKey = "-"

// Appender appends records; *Log is one.
type Appender interface {
	Append(ctx context.Context, rec *Record) error
}

// KeyChange is a call that creates or destroys a key in the HSM.
type KeyChange struct {
	Destroy   bool   // false: a key is generated
	KeyID     string // the key destroyed; empty for a generation
	Actor     Actor
	Citizen   string
	RequestID string
	// Details say what is asked (key type, mode, purpose); they are in
	// both records. No secrets.
	Details map[string]string
}

// ChangeKey is the one rule for every call that creates or destroys a key
// in the HSM (the gRPC KeyService, CA and TSA key set-up and rolls, KEK
// operations): the intent is recorded before the HSM is asked, and the
// change is refused, do never called, when that record cannot be written.
// Then do makes the change and returns the key's ID; the result follows
// as key.generated or key.destroyed, a failure with its reason when do
// failed, linked to the intent by DetailKeyChange.
//
// Errors: do's own error when it failed (its failure recorded best
// effort: the intent is in the log already); an error of
// ErrUnavailable's code when a record could not be written. When only the
// result's record failed, the change did take effect: the key ID is
// returned with the error, and the intent without a result in the log
// says who asked for it.
func ChangeKey(ctx context.Context, a Appender, c KeyChange, do func(ctx context.Context) (keyID string, err error)) (string, error) {
	if a == nil {
		return "", errs.Wrap(ErrUnavailable, nil, "no audit log, key change refused")
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", errs.Internalf(err, "key change id")
	}
	id := hex.EncodeToString(b)
	details := maps.Clone(c.Details)
	if details == nil {
		details = map[string]string{}
	}
	details[DetailKeyChange] = id
	intent, result := KeyGenerateRequested, KeyGenerated
	if c.Destroy {
		intent, result = KeyDestroyRequested, KeyDestroyed
	}
	keyID := c.KeyID
	if keyID == "" {
		keyID = NoKey
	}
	rec := &Record{Event: intent, Outcome: Success, Actor: c.Actor, Citizen: c.Citizen, KeyID: keyID,
		RequestID: c.RequestID, Details: details}
	if err := a.Append(ctx, rec); err != nil {
		return "", refusal(err, "audit log unavailable, key change refused")
	}
	got, err := do(ctx)
	if got != "" {
		keyID = got
	}
	rec = &Record{Event: result, Outcome: Success, Actor: c.Actor, Citizen: c.Citizen, KeyID: keyID,
		RequestID: c.RequestID, Details: maps.Clone(details)}
	if err != nil {
		rec.Outcome, rec.Reason = Failure, failureReason(err)
		if aerr := a.Append(ctx, rec); aerr != nil {
			return got, errors.Join(err, refusal(aerr, "key change failed, and its failure is not recorded"))
		}
		return got, err
	}
	if err := a.Append(ctx, rec); err != nil {
		return got, refusal(err, "key changed, its result not recorded")
	}
	return got, nil
}

// refusal is an append error as the caller of a key change sees it:
// malformed records keep their own code (a wiring mistake), anything else
// is the audit log being unavailable.
func refusal(err error, detail string) error {
	if errs.KindOf(err) == errs.Invalid {
		return err
	}
	return errs.Wrap(ErrUnavailable, err, "%s", detail)
}

// failureReason is what a failed key change's record says: the error's
// code and message, bounded (maxDetailVal) and with personal data
// redacted by Append.
func failureReason(err error) string {
	r := err.Error()
	if e := errs.As(err); e != nil {
		r = e.Code + ": " + r
	}
	if len(r) > 512 {
		r = strings.ToValidUTF8(r[:512], "")
	}
	// Joined errors bring newlines, which a record does not take.
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, r)
}
