package tsa

import (
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
)

// Actor is who the audit records of the built-in TSA name: the service
// itself, since it signs for anyone by design.
var Actor = audit.Actor{Role: audit.RoleSystem, ID: "tsa"}

// DefaultAuditInterval is how long one audit interval of the built-in TSA
// lasts unless configured.
const DefaultAuditInterval = time.Minute

// summaryTimeout bounds writing one interval summary; summaryRetry spaces
// the attempts after a failure.
const (
	summaryTimeout = 30 * time.Second
	summaryRetry   = 10 * time.Second
)

// ErrClosed is a token asked of a Server after Close.
var ErrClosed = errors.New("tsa server closed")

// The built-in TSA signs for anyone, so a key.activated and a key.used
// record per token would let anonymous callers grow the audit log at
// will. Its key use is recorded per interval instead (see
// signing.TimestampInterval and audit.IssuanceSummary):
//
//   - the first token after an interval closed opens a new one: a grant
//     from the signing service, whose key.activated record is written
//     before the token is signed; if it cannot be, no token;
//   - each token is handed out only once its row is in the issuance log
//     (store.TSAIssuance), under the interval's activation ID;
//   - after AuditInterval, or on Close, the interval closes: once the
//     tokens in flight are done, the key.used summary counts the rows,
//     names their serial range and the Merkle root over them in serial
//     order. A summary that cannot be written is retried until it is.

type issued struct {
	serial int64
	leaf   tlog.Hash
}

// interval is one open audit interval.
type interval struct {
	grant  *signing.Grant
	opened time.Time
	timer  *time.Timer

	inflight sync.WaitGroup // tokens being signed under it
	mu       sync.Mutex
	tokens   []issued
	withheld int64 // signed, not handed out: the row could not be stored
	failed   int64 // the signature failed
}

// intervals owns the Server's current interval and the summaries not
// yet written.
type intervals struct {
	s *Server

	flushing sync.Mutex // one flush at a time, so summaries keep their order

	mu      sync.Mutex
	cur     *interval
	closed  bool
	pending []*interval // closed, tokens done, summary not yet recorded
	retry   *time.Timer
	// closing counts intervals taken out of cur whose tokens in flight
	// are not done yet: they join pending only then, so that no summary
	// misses a token, and close waits for them.
	closing sync.WaitGroup
}

// acquire returns the open interval, opening one if needed, with one
// more token in flight on it; the caller calls inflight.Done. Opening
// holds the lock through the key.activated append, so no token of the
// interval is signed before it is recorded.
func (iv *intervals) acquire(ctx context.Context) (*interval, error) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if iv.closed {
		return nil, ErrClosed
	}
	if iv.cur == nil {
		opened := iv.s.cfg.Now()
		g, err := iv.s.cfg.Signing.Authorise(ctx, signing.Request{Purpose: signing.PurposeTSA, Actor: Actor, KeyID: keyID(iv.s.cfg.Signer),
			Details:  map[string]string{"purpose": "rfc3161-timestamp", "interval_opened": opened.UTC().Format(time.RFC3339Nano)},
			Evidence: signing.TimestampInterval(opened.UTC().Format(time.RFC3339Nano))})
		if err != nil {
			return nil, err
		}
		x := &interval{grant: g, opened: opened}
		x.timer = time.AfterFunc(iv.s.cfg.AuditInterval, func() { iv.rotate(x) })
		iv.cur = x
		iv.s.m.intervalOpen.Set(1)
	}
	iv.cur.inflight.Add(1)
	return iv.cur, nil
}

// rotate closes x if it is still the open interval and records its
// summary once its tokens in flight are done.
func (iv *intervals) rotate(x *interval) {
	iv.mu.Lock()
	if iv.cur != x {
		iv.mu.Unlock()
		return
	}
	iv.cur = nil
	iv.s.m.intervalOpen.Set(0)
	iv.closing.Add(1)
	iv.mu.Unlock()
	iv.retire(x)
	ctx, cancel := context.WithTimeout(context.Background(), summaryTimeout)
	defer cancel()
	iv.flush(ctx)
}

// retire queues x's summary once its tokens in flight are done; x is no
// longer current, so none is added meanwhile.
func (iv *intervals) retire(x *interval) {
	x.inflight.Wait()
	iv.mu.Lock()
	iv.pending = append(iv.pending, x)
	iv.mu.Unlock()
	iv.closing.Done()
}

// flush writes the pending summaries, in order; one that fails stays
// pending and is tried again after summaryRetry. Tokens go on being
// issued meanwhile: the lock is not held while a summary is written.
func (iv *intervals) flush(ctx context.Context) error {
	iv.flushing.Lock()
	defer iv.flushing.Unlock()
	for {
		iv.mu.Lock()
		if len(iv.pending) == 0 {
			iv.s.m.pending.Set(0)
			iv.mu.Unlock()
			return nil
		}
		x := iv.pending[0]
		iv.mu.Unlock()
		err := iv.summarise(ctx, x)
		iv.mu.Lock()
		if err != nil {
			iv.s.m.summaries.WithLabelValues("failed").Inc()
			iv.s.m.pending.Set(float64(len(iv.pending)))
			iv.s.log.ErrorContext(ctx, "TSA interval summary not recorded; retrying", "activation", x.grant.Activation(),
				"pending", len(iv.pending), "err", err)
			if iv.retry == nil && !iv.closed {
				iv.retry = time.AfterFunc(summaryRetry, iv.retryFlush)
			}
			iv.mu.Unlock()
			return err
		}
		iv.s.m.summaries.WithLabelValues("recorded").Inc()
		iv.pending = iv.pending[1:]
		iv.mu.Unlock()
	}
}

func (iv *intervals) retryFlush() {
	iv.mu.Lock()
	iv.retry = nil
	iv.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), summaryTimeout)
	defer cancel()
	iv.flush(ctx)
}

// summarise writes x's key.used summary. x has no tokens in flight.
func (iv *intervals) summarise(ctx context.Context, x *interval) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	slices.SortFunc(x.tokens, func(a, b issued) int { return cmp.Compare(a.serial, b.serial) })
	var sum audit.Issuance
	for _, t := range x.tokens {
		sum.Add(t.serial, t.leaf)
	}
	d := sum.Summary(x.withheld).Details()
	d["interval_closed"] = iv.s.cfg.Now().UTC().Format(time.RFC3339Nano)
	if x.failed > 0 {
		d["tsa_failed"] = fmt.Sprint(x.failed)
	}
	return x.grant.Release(ctx, signing.Result{Format: "rfc3161", Details: d})
}

// close closes the open interval and writes every pending summary; after
// it no token is signed.
func (iv *intervals) close(ctx context.Context) error {
	iv.mu.Lock()
	iv.closed = true
	x := iv.cur
	iv.cur = nil
	if iv.retry != nil {
		iv.retry.Stop()
		iv.retry = nil
	}
	if x != nil {
		x.timer.Stop()
		iv.closing.Add(1)
		iv.s.m.intervalOpen.Set(0)
	}
	iv.mu.Unlock()
	if x != nil {
		iv.retire(x)
	}
	iv.closing.Wait() // intervals rotating right now
	return iv.flush(ctx)
}

// issue signs one token under the open interval and stores its issuance
// row; the token is returned only once the row is stored.
func (s *Server) issue(ctx context.Context, req *request, h crypto.Hash, serial *big.Int, genTime time.Time) ([]byte, error) {
	if !serial.IsInt64() {
		return nil, fmt.Errorf("serial %#x does not fit the issuance log", serial)
	}
	x, err := s.iv.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("authorise: %w", err)
	}
	defer x.inflight.Done()
	token, err := s.token(req, h, serial, genTime, x.grant.Signer(ctx))
	if err != nil {
		x.mu.Lock()
		x.failed++
		x.mu.Unlock()
		return nil, err
	}
	sum := sha256.Sum256(token)
	row := &store.TSAIssuance{Serial: serial.Int64(), Interval: x.grant.Activation(), KeyID: x.grant.Key().ID, IssuedAt: genTime.UTC(),
		TokenHash: sum[:], ImprintHash: audit.Digest(h, nil).Hash, Policy: s.cfg.Policy.String(), Client: clientOf(ctx)}
	// Not cancelled with the request: a row stored while the caller left
	// must still be counted, or the summary would disagree with the log.
	if err := s.rows.add(context.WithoutCancel(ctx), row); err != nil {
		x.mu.Lock()
		x.withheld++
		x.mu.Unlock()
		s.m.rows.WithLabelValues("failed").Inc()
		return nil, fmt.Errorf("issuance log: %w", err)
	}
	s.m.stored.Inc()
	x.mu.Lock()
	x.tokens = append(x.tokens, issued{serial: row.Serial, leaf: audit.IssuanceLeaf(row)})
	x.mu.Unlock()
	return token, nil
}

// Close closes the open audit interval and records its summary (and any
// earlier one not yet recorded). The Server signs no token after it.
func (s *Server) Close(ctx context.Context) error {
	if s.iv == nil {
		return nil
	}
	if err := s.iv.close(ctx); err != nil {
		return fmt.Errorf("tsa: interval summary: %w", err)
	}
	return nil
}

type clientKey struct{}

// WithClient names the requester of the tokens asked with ctx (its
// rate-limit key, the IP address) for the issuance log.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientOf(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}

func keyID(s crypto.Signer) string {
	if ks, ok := s.(*keystore.Signer); ok {
		return ks.Key().ID
	}
	return ""
}
