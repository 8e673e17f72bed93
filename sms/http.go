package sms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrGateway is a message the HTTP gateway could not hand to the provider:
// refused, or failing after every retry. Nothing was sent.
var ErrGateway = errors.New("sms provider did not accept the message")

// HTTPOptions configures the HTTP gateway. URL is required.
type HTTPOptions struct {
	// URL receives a POST per message with the JSON body
	// {"to", "text", "from", "reference"}; any 2xx accepts it.
	URL string
	// AuthHeader and AuthValue are sent with every request, e.g.
	// "Authorization" and "Bearer <token>". The value is a secret and is
	// never logged.
	AuthHeader string
	AuthValue  string
	From       string        // sender name or number, if the provider wants one
	Timeout    time.Duration // per attempt; default 5 s
	Retries    int           // attempts after the first; default 3, negative for none
	Backoff    time.Duration // before the first retry, doubling each time; default 250 ms
	Client     *http.Client  // default a client with no overall timeout (Timeout applies per attempt)
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// HTTP is a Gateway that posts messages to an SMS provider's HTTP API.
type HTTP struct {
	opt      HTTPOptions
	log      *slog.Logger
	attempts *prometheus.CounterVec
	sent     prometheus.Counter
	fails    prometheus.Counter
}

var _ Gateway = (*HTTP)(nil)

// NewHTTP returns an HTTP gateway.
func NewHTTP(opt HTTPOptions) (*HTTP, error) {
	u, err := url.Parse(opt.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("sms http: url %q is not an absolute http(s) URL", opt.URL)
	}
	if (opt.AuthHeader == "") != (opt.AuthValue == "") {
		return nil, errors.New("sms http: give both the auth header name and its value, or neither")
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.Retries == 0 {
		opt.Retries = 3
	} else if opt.Retries < 0 {
		opt.Retries = 0
	}
	if opt.Backoff <= 0 {
		opt.Backoff = 250 * time.Millisecond
	}
	if opt.Client == nil {
		opt.Client = &http.Client{}
	}
	h := &HTTP{opt: opt, log: opt.Log,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_sms_http_attempts_total",
			Help: "Requests to the SMS provider, by outcome (ok, retry, refused)."}, []string{"outcome"}),
	}
	// Names of their own, so that the http gateway and the outbox (which
	// the registry keeps using) can both be registered.
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_sms_http_messages_total",
		Help: "Text messages through the http SMS gateway, by outcome (sent, failed)."}, []string{"outcome"})
	h.sent, h.fails = msgs.WithLabelValues("sent"), msgs.WithLabelValues("failed")
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{h.attempts, msgs} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("sms http metrics: %w", err)
			}
		}
	}
	return h, nil
}

type httpMessage struct {
	To        string `json:"to"`
	Text      string `json:"text"`
	From      string `json:"from,omitempty"`
	Reference string `json:"reference"`
}

// Send posts the message, retrying network errors, timeouts, 429 and 5xx
// answers with exponential backoff and jitter. Every attempt carries the
// same reference, so a provider can drop duplicates of a retried message.
// A 4xx answer is final. The text is never logged.
func (h *HTTP) Send(ctx context.Context, to, text string) error {
	if err := Check(to, text); err != nil {
		h.fails.Inc()
		return err
	}
	ref := make([]byte, 12)
	if _, err := rand.Read(ref); err != nil {
		h.fails.Inc()
		return fmt.Errorf("sms http: %w", err)
	}
	body, err := json.Marshal(httpMessage{To: to, Text: text, From: h.opt.From, Reference: hex.EncodeToString(ref)})
	if err != nil {
		h.fails.Inc()
		return fmt.Errorf("sms http: %w", err)
	}
	var last error
	for attempt := 0; attempt <= h.opt.Retries; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, h.backoff(attempt)); err != nil {
				h.fails.Inc()
				return fmt.Errorf("sms to %s: %w after %d attempts: %w", Mask(to), ErrGateway, attempt, err)
			}
		}
		retry, err := h.post(ctx, body)
		if err == nil {
			h.attempts.WithLabelValues("ok").Inc()
			h.sent.Inc()
			h.log.InfoContext(ctx, "sms sent", "to", Mask(to), "reference", hex.EncodeToString(ref), "attempts", attempt+1)
			return nil
		}
		last = err
		if !retry {
			h.attempts.WithLabelValues("refused").Inc()
			h.fails.Inc()
			h.log.WarnContext(ctx, "sms refused by provider", "to", Mask(to), "err", err)
			return fmt.Errorf("sms to %s: %w: %w", Mask(to), ErrGateway, err)
		}
		h.attempts.WithLabelValues("retry").Inc()
		h.log.WarnContext(ctx, "sms attempt failed", "to", Mask(to), "attempt", attempt+1, "err", err)
	}
	h.fails.Inc()
	return fmt.Errorf("sms to %s: %w after %d attempts: %w", Mask(to), ErrGateway, h.opt.Retries+1, last)
}

// post makes one attempt and says whether a failure is worth retrying.
func (h *HTTP) post(ctx context.Context, body []byte) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, h.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, h.opt.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "firmad-sms/1")
	if h.opt.AuthHeader != "" {
		req.Header.Set(h.opt.AuthHeader, h.opt.AuthValue)
	}
	resp, err := h.opt.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		// Only the kind of failure: the *url.Error would repeat the URL,
		// whose query may hold the provider's credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return true, fmt.Errorf("provider timed out after %s", h.opt.Timeout)
			}
			return true, fmt.Errorf("provider unreachable: %w", ue.Err)
		}
		return true, errors.New("provider unreachable")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return true, errors.New("provider answered " + strconv.Itoa(resp.StatusCode))
	}
	return false, errors.New("provider answered " + strconv.Itoa(resp.StatusCode))
}

// backoff is Backoff doubled per retry, with up to half of it again as
// jitter so that many nodes do not retry in step.
func (h *HTTP) backoff(attempt int) time.Duration {
	d := h.opt.Backoff << (attempt - 1)
	if n, err := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1)); err == nil {
		d += time.Duration(n.Int64())
	}
	return d
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
