package transaction

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/store"
)

// Callback headers. The signature is HMAC-SHA256, keyed with the portal's
// callback key, over the timestamp, a dot and the body, so a notice cannot
// be replayed with another time or altered.
const (
	HeaderTimestamp = "Firma-Timestamp" // Unix seconds
	HeaderSignature = "Firma-Signature" // "v1=" + hex HMAC
	maxBackoff      = 5 * time.Minute
)

// ErrCallbackSignature is a callback whose signature does not check.
var ErrCallbackSignature = errors.New("callback signature does not verify")

// Notice is the body of a callback.
type Notice struct {
	ID        string  `json:"id"`
	AppID     string  `json:"app_id"`
	State     State   `json:"state"`
	Summary   Summary `json:"summary,omitempty"`
	ErrorCode Code    `json:"error_code,omitempty"`
}

// SignCallback returns the signature header value for body sent at ts.
func SignCallback(key []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyCallback checks a received callback: the signature in constant
// time, and the timestamp within tolerance of now. Portals use it (or its
// few lines in their language).
func VerifyCallback(key []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrCallbackSignature)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is outside the tolerance", ErrCallbackSignature, ts.UTC().Format(time.RFC3339))
	}
	if !hmac.Equal([]byte(signature), []byte(SignCallback(key, ts, body))) {
		return ErrCallbackSignature
	}
	return nil
}

// Run expires overdue transactions, offers the signing workers the
// approved transactions that are due (see scan) and delivers callbacks
// until ctx ends. Every node may run it: each step is a
// conditional update, so none is done twice.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Resume(ctx); err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "resume signing", "err", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastPurge time.Time
	for {
		if time.Since(lastPurge) >= time.Minute {
			s.Purge(ctx)
			lastPurge = time.Now()
		}
		s.Sweep(ctx)
		if err := s.scan(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "resume scan", "err", err)
		}
		s.DeliverCallbacks(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.kick:
		}
	}
}

// Sweep moves every transaction still waiting for its citizen past its
// expiry to expired.
func (s *Service) Sweep(ctx context.Context) {
	live := []string{string(StateDraft), string(StateCreated), string(StateAuthenticated), string(StateOTPSent)}
	for {
		ts, err := s.st.TransactionsDue(ctx, live, s.now(), 100)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "expiry sweep", "err", err)
			}
			return
		}
		if len(ts) == 0 {
			return
		}
		for _, t := range ts {
			if err := s.finish(ctx, t, StateExpired, CodeExpired, "the transaction was not approved in time"); err != nil &&
				!errors.Is(err, store.ErrConflict) {
				s.log.ErrorContext(ctx, "expire transaction", "transaction", t.ID, "err", err)
				return
			}
		}
	}
}

// Purge deletes the documents and results of transactions that ended
// more than the retention period ago, keeping their digests and outcomes.
func (s *Service) Purge(ctx context.Context) {
	var total int64
	for {
		n, err := s.st.PurgeDocuments(ctx, s.now().Add(-s.opt.Retention), 100)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "purge documents", "err", err)
			}
			return
		}
		total += n
		if n == 0 {
			break
		}
	}
	if total > 0 {
		s.log.InfoContext(ctx, "documents past retention purged", "documents", total, "retention", s.opt.Retention)
	}
}

// DeliverCallbacks posts every due callback once.
func (s *Service) DeliverCallbacks(ctx context.Context) {
	ts, err := s.st.CallbacksDue(ctx, s.now(), 100)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "callbacks due", "err", err)
		}
		return
	}
	for _, t := range ts {
		s.deliver(ctx, t)
	}
}

func (s *Service) deliver(ctx context.Context, t *store.Transaction) {
	p, err := s.opt.Portals.Get(ctx, t.PortalID)
	if err != nil {
		s.log.ErrorContext(ctx, "callback portal", "transaction", t.ID, "err", err)
		return
	}
	var deliverErr error
	if p.CallbackURL == "" || len(p.CallbackKey) == 0 {
		deliverErr = errors.New("the portal no longer has a callback URL")
		t.CallbackAttempts = s.opt.CallbackAttempts
	} else {
		deliverErr = s.post(ctx, p, t)
		t.CallbackAttempts++
	}
	now := s.now().UTC()
	switch {
	case deliverErr == nil:
		t.CallbackState, t.CallbackError = "delivered", ""
		s.m.callbacks.WithLabelValues("delivered").Inc()
	case t.CallbackAttempts >= s.opt.CallbackAttempts:
		t.CallbackState, t.CallbackError = "failed", deliverErr.Error()
		s.m.callbacks.WithLabelValues("failed").Inc()
		s.log.WarnContext(ctx, "callback given up", "transaction", t.ID, "portal", t.PortalID, "attempts", t.CallbackAttempts, "err", deliverErr)
	default:
		backoff := min(s.opt.CallbackBackoff<<(t.CallbackAttempts-1), maxBackoff)
		t.CallbackNextAt, t.CallbackError = now.Add(backoff), deliverErr.Error()
		s.m.callbacks.WithLabelValues("retry").Inc()
		s.log.InfoContext(ctx, "callback failed, will retry", "transaction", t.ID, "in", backoff, "err", deliverErr)
	}
	t.UpdatedAt = now
	if err := s.st.UpdateTransaction(ctx, t); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.ErrorContext(ctx, "callback state", "transaction", t.ID, "err", err)
	}
}

func (s *Service) post(ctx context.Context, p *store.Portal, t *store.Transaction) error {
	body, err := json.Marshal(Notice{ID: t.ID, AppID: t.PortalID, State: State(t.State), Summary: Summary(t.Summary), ErrorCode: Code(t.ErrorCode)})
	if err != nil {
		return err
	}
	now := s.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "firmad-callback/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, SignCallback(p.CallbackKey, now, body))
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may carry a token in its query; say only what failed.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			return fmt.Errorf("post callback: %s", strings.TrimSpace(ue.Unwrap().Error()))
		}
		return errors.New("post callback failed")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("callback answered %d", resp.StatusCode)
	}
	return nil
}
