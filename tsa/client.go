package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/prometheus/client_golang/prometheus"
)

// Client defaults.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultRetries      = 2
	DefaultBackoff      = 200 * time.Millisecond
	DefaultMaxClockSkew = 5 * time.Minute
	maxReplyBytes       = 1 << 20
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URLs are the TSAs, tried in order: the first that answers with a
	// reply passing every check wins.
	URLs []string
	// Roots are the trust anchors TSA certificates must chain to;
	// Intermediates may add CA certificates a TSA leaves out of its token.
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// Policy, when set, is asked for and required in the token.
	Policy asn1.ObjectIdentifier
	// Timeout bounds each whole HTTP exchange, reading the reply
	// included; 0 means DefaultTimeout.
	Timeout time.Duration
	// BreakerCooldown is how long a TSA that timed out or could not be
	// reached is skipped (failing over to the next at once) before one
	// trial request goes to it again; 0 means DefaultBreakerCooldown.
	BreakerCooldown time.Duration
	// Retries is how many more rounds over URLs follow the first when
	// every TSA is down; 0 means DefaultRetries, negative means none.
	Retries int
	// Backoff is the wait before the first retry round, doubled for each
	// further one and jittered; 0 means DefaultBackoff.
	Backoff time.Duration
	// MaxClockSkew bounds how far a token's time may be from our clock;
	// 0 means DefaultMaxClockSkew, negative disables the check.
	MaxClockSkew time.Duration
	HTTPClient   *http.Client // nil means a client with no overall timeout
	Logger       *slog.Logger
	Registerer   prometheus.Registerer // nil registers no metrics
}

// Client obtains verified time-stamp tokens from one or more TSAs.
type Client struct {
	cfg      ClientConfig
	urls     []string // as configured
	labels   []string // redacted, for logs and metrics
	http     *http.Client
	log      *slog.Logger
	m        *clientMetrics
	breakers []*breaker       // one per URL
	now      func() time.Time // time.Now; tests move it past a cool-down
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("tsa client: no TSA URL configured")
	}
	if cfg.Roots == nil {
		return nil, errors.New("tsa client: no trusted roots configured")
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger, now: time.Now}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("tsa client: TSA URL %q is not an http(s) URL", redact(raw))
		}
		c.urls = append(c.urls, raw)
		c.labels = append(c.labels, u.Redacted())
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = DefaultTimeout
	}
	if c.cfg.BreakerCooldown <= 0 {
		c.cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.cfg.Retries == 0 {
		c.cfg.Retries = DefaultRetries
	} else if c.cfg.Retries < 0 {
		c.cfg.Retries = 0
	}
	if c.cfg.Backoff <= 0 {
		c.cfg.Backoff = DefaultBackoff
	}
	if c.cfg.MaxClockSkew == 0 {
		c.cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	m, err := newClientMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("tsa client: %w", err)
	}
	c.m = m
	for _, l := range c.labels {
		b := &breaker{cooldown: c.cfg.BreakerCooldown, state: m.breaker.WithLabelValues(l), opened: m.opened.WithLabelValues(l)}
		b.set(breakerClosed)
		c.breakers = append(c.breakers, b)
	}
	return c, nil
}

// redact hides a password in a URL that failed to parse as one.
func redact(raw string) string {
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		return "…" + raw[at:]
	}
	return raw
}

// Error is what Timestamp returns when no TSA gave a good token. It wraps
// Kind (ErrBadReply, ErrRejected or ErrUnavailable, in that order of
// precedence: a TSA that answered wrongly matters more than one that was
// down) and the attempts that failed that way.
type Error struct {
	Kind     error
	Attempts []error // every attempt, in order
}

// Error lists every failed attempt.
func (e *Error) Error() string {
	msgs := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		msgs[i] = a.Error()
	}
	return "timestamp: " + strings.Join(msgs, "; ")
}

// Unwrap returns Kind and the attempts of that kind, so errors.Is finds
// both the kind and the specific reason (ErrNonceMismatch, ...).
func (e *Error) Unwrap() []error {
	out := []error{e.Kind}
	for _, a := range e.Attempts {
		if errors.Is(a, e.Kind) {
			out = append(out, a)
		}
	}
	return out
}

// Timestamp asks the configured TSAs, in order, for a token over digest,
// which must be a hash of kind h, and returns the first token that passes
// every check. Rounds over the URLs are repeated, with backoff, only while
// every failure was a TSA being unavailable.
func (c *Client) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) (*Token, error) {
	if h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512 {
		return nil, fmt.Errorf("timestamp: %w: %v (want SHA-256, SHA-384 or SHA-512)", ErrUnsupportedHash, h)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("timestamp: %v digest of %d bytes, want %d", h, len(digest), h.Size())
	}
	// 64 random bits: RFC 3161 asks for a large random number, and every
	// TSA handles a nonce of this size.
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("timestamp: nonce: %w", err)
	}
	query, err := (&timestamp.Request{
		HashAlgorithm: h,
		HashedMessage: digest,
		Certificates:  true,
		TSAPolicyOID:  c.cfg.Policy,
		Nonce:         nonce,
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("timestamp: build query: %w", err)
	}
	opts := VerifyOptions{
		Roots:         c.cfg.Roots,
		Intermediates: c.cfg.Intermediates,
		Hash:          h,
		Digest:        digest,
		Nonce:         nonce,
	}
	if len(c.cfg.Policy) > 0 {
		opts.Policies = []asn1.ObjectIdentifier{c.cfg.Policy}
	}
	var attempts []error
	for round := 0; round <= c.cfg.Retries; round++ {
		if round > 0 {
			if c.allSkipped() {
				// Every TSA is cooling down after a timeout or failed
				// connection: another round would only wait the backoff.
				break
			}
			if err := sleep(ctx, backoff(c.cfg.Backoff, round)); err != nil {
				attempts = append(attempts, fmt.Errorf("%w: %w", ErrUnavailable, err))
				break
			}
		}
		allDown := true
		for i, u := range c.urls {
			tok, err := c.try(ctx, i, query, opts)
			if err == nil {
				tok.URL = u
				return tok, nil
			}
			attempts = append(attempts, err)
			if !errors.Is(err, ErrUnavailable) {
				allDown = false
			}
			if ctx.Err() != nil {
				return nil, c.fail(attempts)
			}
		}
		// A TSA that answered wrongly or refused will do so again: retry
		// only outages.
		if !allDown {
			break
		}
	}
	return nil, c.fail(attempts)
}

// Reachable reports, without asking any TSA, whether a timestamp may be
// had now: ErrUnavailable when every TSA's breaker is open after a timeout
// or a failed connection, so that readiness says the node cannot make B-T
// signatures until one answers again (the cool-down's trial finds out).
// Readiness does not send queries of its own: an outside TSA's tokens are
// not ours to spend on health checks.
func (c *Client) Reachable() error {
	if c.allSkipped() {
		return fmt.Errorf("%w: every TSA timed out or refused the connection; the next try is after the cool-down", ErrUnavailable)
	}
	return nil
}

// allSkipped reports whether every TSA's breaker would skip it now.
func (c *Client) allSkipped() bool {
	now := c.now()
	for _, b := range c.breakers {
		if !b.skipping(now) {
			return false
		}
	}
	return true
}

func (c *Client) fail(attempts []error) error {
	kind := ErrUnavailable
	for _, a := range attempts {
		if errors.Is(a, ErrBadReply) {
			kind = ErrBadReply
			break
		}
		if errors.Is(a, ErrRejected) {
			kind = ErrRejected
		}
	}
	return &Error{Kind: kind, Attempts: attempts}
}

// try makes one exchange with the i-th TSA and checks the reply.
func (c *Client) try(ctx context.Context, i int, query []byte, opts VerifyOptions) (*Token, error) {
	label := c.labels[i]
	b := c.breakers[i]
	if !b.allow(c.now()) {
		return nil, fmt.Errorf("tsa %s: %w: %w", label, ErrUnavailable, ErrCircuitOpen)
	}
	start := time.Now()
	tok, outcome, answered, err := c.exchange(ctx, c.urls[i], query, opts)
	switch {
	case answered:
		b.answered()
	case ctx.Err() != nil:
		b.abandoned(c.now())
	default:
		b.unreachable(c.now())
		c.log.WarnContext(ctx, "TSA skipped until its cool-down ends", "tsa", label, "cooldown", c.cfg.BreakerCooldown)
	}
	c.m.duration.WithLabelValues(label, outcome).Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.failures.WithLabelValues(label, outcome).Inc()
		c.log.WarnContext(ctx, "time-stamp request failed", "tsa", label, "outcome", outcome, "err", err)
		return nil, fmt.Errorf("tsa %s: %w", label, err)
	}
	return tok, nil
}

func (c *Client) exchange(ctx context.Context, u string, query []byte, opts VerifyOptions) (tok *Token, outcome string, answered bool, err error) {
	// The deadline covers the whole exchange, reading the reply included,
	// so that a TSA that sends headers and then stalls is cut off too.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(query))
	if err != nil {
		return nil, "unavailable", false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", QueryContentType)
	req.Header.Set("Accept", ReplyContentType)
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the URL, which may hold credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "unavailable", false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, "unavailable", false, fmt.Errorf("%w: read reply: %w", ErrUnavailable, err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, "unavailable", true, fmt.Errorf("%w: HTTP %s", ErrUnavailable, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "bad_reply", true, fmt.Errorf("%w: HTTP %s", ErrBadReply, resp.Status)
	}
	// application/timestamp-response is what some TSAs still send, from
	// drafts of RFC 3161.
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != ReplyContentType && mt != "application/timestamp-response" {
		return nil, "bad_reply", true, fmt.Errorf("%w: content type %q, want %s", ErrBadReply, mt, ReplyContentType)
	}
	if len(body) > maxReplyBytes {
		return nil, "bad_reply", true, fmt.Errorf("%w: reply larger than %d bytes", ErrBadReply, maxReplyBytes)
	}
	token, err := ParseReply(body)
	if errors.Is(err, ErrRejected) {
		return nil, "rejected", true, err
	}
	if err != nil {
		return nil, "bad_reply", true, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	tok, err = VerifyToken(token, opts)
	if err != nil {
		return nil, "bad_reply", true, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	if c.cfg.MaxClockSkew > 0 {
		if d := time.Since(tok.Time).Abs(); d > c.cfg.MaxClockSkew+tok.Accuracy {
			return nil, "bad_reply", true, fmt.Errorf("%w: token time %s is %s away from ours", ErrBadReply, tok.Time.Format(time.RFC3339), d.Round(time.Second))
		}
	}
	return tok, "ok", true, nil
}

// RejectionError is a TSA's refusal of a request.
type RejectionError struct {
	Status   int      // PKIStatus
	FailInfo FailInfo // FailNone if the TSA gave none
	Text     []string // the TSA's statusString, if any
}

// Error names the status, failure bit and the TSA's own text.
func (e *RejectionError) Error() string {
	msg := fmt.Sprintf("%v: PKIStatus %d", ErrRejected, e.Status)
	if e.FailInfo != FailNone {
		msg += ", failInfo " + e.FailInfo.String()
	}
	if len(e.Text) > 0 {
		msg += fmt.Sprintf(" (%q)", strings.Join(e.Text, "; "))
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrRejected) hold.
func (e *RejectionError) Unwrap() error { return ErrRejected }

// ParseReply parses a DER TimeStampResp. It returns the TimeStampToken of a
// granted reply, unverified, or a *RejectionError.
func ParseReply(der []byte) ([]byte, error) {
	var resp response
	rest, err := asn1.Unmarshal(der, &resp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: trailing data after TimeStampResp", ErrMalformed)
	}
	if st := resp.Status.Status; st != statusGranted && st != statusGrantedWithMods {
		e := &RejectionError{Status: st, FailInfo: FailNone}
		for _, t := range resp.Status.StatusString {
			// Shown to people, so only printable UTF-8 is kept.
			e.Text = append(e.Text, strings.ToValidUTF8(string(t.Bytes), "?"))
		}
		for i := 0; i < resp.Status.FailInfo.BitLength; i++ {
			if resp.Status.FailInfo.At(i) == 1 {
				e.FailInfo = FailInfo(i)
				break
			}
		}
		return nil, e
	}
	if len(resp.TimeStampToken.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: granted reply without a token", ErrMalformed)
	}
	return resp.TimeStampToken.FullBytes, nil
}

func backoff(base time.Duration, round int) time.Duration {
	d := base << (round - 1)
	// Full jitter on half the wait, so that clients failing together do
	// not retry together.
	return d/2 + mrand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
