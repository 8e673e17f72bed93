package sms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/store"
)

// Outbox is a Gateway that keeps messages in the store instead of sending
// them.
type Outbox struct {
	st    store.SMSStore
	log   *slog.Logger
	now   func() time.Time
	sent  prometheus.Counter
	fails prometheus.Counter
}

var _ Gateway = (*Outbox)(nil)

// OutboxOptions configures an Outbox; every field is optional.
type OutboxOptions struct {
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Clock      func() time.Time
}

// NewOutbox returns an outbox gateway on st.
func NewOutbox(st store.SMSStore, opt OutboxOptions) (*Outbox, error) {
	o := &Outbox{st: st, log: opt.Log, now: opt.Clock,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "firma_sms_sent_total",
			Help: "Text messages accepted by the SMS gateway."}),
		fails: prometheus.NewCounter(prometheus.CounterOpts{Name: "firma_sms_failed_total",
			Help: "Text messages the SMS gateway refused or failed to send."}),
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{o.sent, o.fails} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("sms outbox metrics: %w", err)
			}
		}
	}
	return o, nil
}

// Send stores the message. The text is never logged: it carries codes.
func (o *Outbox) Send(ctx context.Context, to, text string) error {
	if err := Check(to, text); err != nil {
		o.fails.Inc()
		return err
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		o.fails.Inc()
		return fmt.Errorf("sms outbox: %w", err)
	}
	m := &store.SMS{ID: hex.EncodeToString(id), To: to, Text: text, CreatedAt: o.now().UTC()}
	if err := o.st.PutSMS(ctx, m); err != nil {
		o.fails.Inc()
		return fmt.Errorf("sms outbox: %w", err)
	}
	o.sent.Inc()
	o.log.InfoContext(ctx, "sms queued in outbox", "id", m.ID, "to", Mask(to))
	return nil
}

// Messages lists stored messages newest first, to one number if to is set.
func (o *Outbox) Messages(ctx context.Context, to string, limit int) ([]*store.SMS, error) {
	return o.st.SMSes(ctx, to, limit)
}

// Purge deletes the messages older than maxAge: they carry codes that
// expired long ago, and the outbox is not an archive.
func (o *Outbox) Purge(ctx context.Context, maxAge time.Duration) (int64, error) {
	n, err := o.st.DeleteSMS(ctx, o.now().Add(-maxAge))
	if err != nil {
		return 0, fmt.Errorf("sms outbox purge: %w", err)
	}
	return n, nil
}

// Mask hides all but the last three digits of a number, for logs and for
// telling a citizen where a code went.
func Mask(number string) string {
	if len(number) <= 3 {
		return "***"
	}
	b := []byte(number)
	for i := 0; i < len(b)-3; i++ {
		if b[i] >= '0' && b[i] <= '9' && i > 2 {
			b[i] = '*'
		}
	}
	return string(b)
}
