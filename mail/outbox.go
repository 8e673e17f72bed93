package mail

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
	st    store.MailStore
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
func NewOutbox(st store.MailStore, opt OutboxOptions) (*Outbox, error) {
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_mail_outbox_messages_total",
		Help: "E-mails through the outbox mail gateway, by outcome (stored, failed)."}, []string{"outcome"})
	o := &Outbox{st: st, log: opt.Log, now: opt.Clock, sent: msgs.WithLabelValues("stored"), fails: msgs.WithLabelValues("failed")}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if opt.Registerer != nil {
		if err := opt.Registerer.Register(msgs); err != nil {
			return nil, fmt.Errorf("mail outbox metrics: %w", err)
		}
	}
	return o, nil
}

// Send checks and stores the message.
func (o *Outbox) Send(ctx context.Context, to, subject, text string) error {
	if err := Check(to, subject, text); err != nil {
		o.fails.Inc()
		return err
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		o.fails.Inc()
		return fmt.Errorf("mail outbox: %w", err)
	}
	m := &store.Email{ID: hex.EncodeToString(id), To: to, Subject: subject, Text: text, CreatedAt: o.now().UTC()}
	if err := o.st.PutEmail(ctx, m); err != nil {
		o.fails.Inc()
		return fmt.Errorf("mail outbox: %w", err)
	}
	o.sent.Inc()
	o.log.InfoContext(ctx, "mail queued in outbox", "id", m.ID, "to", Mask(to))
	return nil
}

// Messages lists stored messages newest first, to one address if to is
// set, at most limit (100 if limit <= 0).
func (o *Outbox) Messages(ctx context.Context, to string, limit int) ([]*store.Email, error) {
	ms, err := o.st.Emails(ctx, to, limit)
	if err != nil {
		return nil, fmt.Errorf("mail outbox: %w", err)
	}
	return ms, nil
}

// Purge deletes the messages older than maxAge: the outbox is not an
// archive, and its messages hold personal data.
func (o *Outbox) Purge(ctx context.Context, maxAge time.Duration) (int64, error) {
	n, err := o.st.DeleteEmails(ctx, o.now().Add(-maxAge))
	if err != nil {
		return 0, fmt.Errorf("mail outbox purge: %w", err)
	}
	return n, nil
}
