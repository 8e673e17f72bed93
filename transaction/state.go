package transaction

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store"
)

// maxRetries bounds how often a step re-reads a transaction that another
// request changed under it.
const maxRetries = 4

func notFound() *Error {
	return refuse(CodeUnknownTransaction, "no such transaction")
}

// load returns the transaction; a live one past its expiry is first moved
// to expired, so an expired transaction never takes another step even
// before the sweeper runs.
func (s *Service) load(ctx context.Context, id string) (*store.Transaction, error) {
	if !validID(id) {
		return nil, notFound()
	}
	for range maxRetries {
		t, err := s.st.Transaction(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound()
		}
		if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		if !s.overdue(t) {
			return t, nil
		}
		err = s.finish(ctx, t, StateExpired, CodeExpired, "the transaction was not approved in time")
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
	}
	return nil, fail(CodeUnavailable, "the transaction is busy; retry", nil)
}

// overdue reports a transaction still waiting for the citizen after its
// expiry. Approved ones are past waiting: signing finishes them.
func (s *Service) overdue(t *store.Transaction) bool {
	switch State(t.State) {
	case StateDraft, StateCreated, StateAuthenticated, StateOTPSent:
		return !s.now().Before(t.ExpiresAt)
	}
	return false
}

// loadFor is load scoped to a portal: another portal's transaction is
// reported exactly like a missing one.
func (s *Service) loadFor(ctx context.Context, portalID, id string) (*store.Transaction, error) {
	t, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.PortalID != portalID {
		return nil, notFound()
	}
	return t, nil
}

// finish moves t to a final state, queueing the portal's callback in the
// same update so that a crash cannot lose it.
func (s *Service) finish(ctx context.Context, t *store.Transaction, st State, code Code, msg string) error {
	now := s.now().UTC()
	prev := *t
	t.State, t.ErrorCode, t.ErrorMessage = string(st), string(code), msg
	t.EndedAt, t.UpdatedAt = now, now
	t.OTPHash = nil
	if p, err := s.opt.Portals.Get(ctx, t.PortalID); err == nil && p.CallbackURL != "" && len(p.CallbackKey) > 0 {
		t.CallbackState, t.CallbackNextAt, t.CallbackAttempts = "pending", now, 0
	}
	if err := s.st.UpdateTransaction(ctx, t); err != nil {
		*t = prev
		return err
	}
	s.m.ended.WithLabelValues(string(st)).Inc()
	outcome := audit.Success
	switch st {
	case StateFailed:
		outcome = audit.Failure
	case StateRejected, StateCancelled, StateExpired:
		outcome = audit.Denied
	}
	s.record(ctx, &audit.Record{Event: audit.TransactionStateChange, Outcome: outcome, Actor: systemActor(), Citizen: t.CitizenID,
		Portal: t.PortalID, RequestID: t.ID, Reason: msg,
		Details: map[string]string{"transaction": t.ID, "from": prev.State, "state": string(st), "error_code": string(code)}})
	s.log.InfoContext(ctx, "transaction ended", "transaction", t.ID, "portal", t.PortalID, "state", st, "code", code)
	if t.CallbackState == "pending" {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// stateError explains why a step does not apply to t in its state.
func stateError(t *store.Transaction) *Error {
	switch State(t.State) {
	case StateDone:
		return refuse(CodeAlreadyUsed, "this transaction was already approved and signed")
	case StateApproved, StateSigning:
		return refuse(CodeAlreadyUsed, "this transaction was already approved; its documents are being signed")
	case StateRejected:
		return refuse(CodeCancelledByCitizen, "the citizen rejected this transaction")
	case StateCancelled:
		return refuse(CodeCancelled, "the portal cancelled this transaction")
	case StateExpired:
		return refuse(CodeExpired, "the transaction was not approved in time")
	case StateDraft:
		return refuse(CodeWrongState, "the batch is still open: sign it (signBatch) first")
	case StateFailed:
		code := Code(t.ErrorCode)
		if code == "" {
			code = CodeSigningFailed
		}
		msg := t.ErrorMessage
		if msg == "" {
			msg = "the transaction failed"
		}
		return refuse(code, "%s", msg)
	}
	return refuse(CodeWrongState, "this step does not apply to a transaction in state %s", t.State)
}

// sessionHash keys the stored hash of a citizen session token to the
// transaction, like OTPs.
func (s *Service) sessionHash(id, token string) []byte {
	m := hmac.New(sha256.New, s.opt.OTPKey)
	fmt.Fprintf(m, "firma-session-v1\x00%s\x00%s", id, token)
	return m.Sum(nil)
}

func (s *Service) checkSession(t *store.Transaction, token string) error {
	if token == "" || len(t.SessionHash) == 0 || !hmac.Equal(t.SessionHash, s.sessionHash(t.ID, token)) {
		return refuse(CodeSessionInvalid, "sign in again to continue with this transaction")
	}
	return nil
}
