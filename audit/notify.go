package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	_ "time/tzdata" // Europe/Madrid without the system's zone files

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// Contacts finds a citizen's mobile number and email; *registry.Service
// is one.
type Contacts interface {
	Citizen(ctx context.Context, id string) (*store.Citizen, error)
}

// Sender sends a short text to an address; *sms.Outbox (and any
// sms.Gateway) is one for mobile numbers.
type Sender interface {
	Send(ctx context.Context, to, text string) error
}

// NotifyOptions configure NotifySignatures. Set SMS, Email or both: that
// chooses the channels.
type NotifyOptions struct {
	Contacts Contacts
	SMS      Sender // to the citizen's mobile number
	Email    Sender // to the citizen's email address
	// Interval is how often the log is read for new signatures; default 2s.
	Interval time.Duration
	// Name keeps this reader's position in the store; default "notify".
	Name string
	// Message writes the text for one signing record; default
	// DefaultMessage.
	Message    func(r *Record) string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

var madrid = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Madrid"); err == nil {
		return l
	}
	return time.UTC
}()

// DefaultMessage tells the citizen when, for which portal and how many
// documents their key signed. It holds no digest, no secret and no link:
// a message that asked the reader to act could be copied by phishers.
func DefaultMessage(r *Record) string {
	n := len(r.Documents)
	// Spanish agrees the verb with the count: "se firmó 1 documento",
	// "se firmaron 2 documentos".
	verb, docs := "se firmó", "1 documento"
	if n != 1 {
		verb, docs = "se firmaron", fmt.Sprintf("%d documentos", n)
	}
	portal := r.Portal
	if portal == "" {
		portal = "un servicio"
	}
	t := r.Time.In(madrid)
	return fmt.Sprintf("Cl@ve Firma: el %s a las %s %s %s con su certificado a petición de %s. "+
		"Si no reconoce esta firma, revóquelo y contacte con su oficina de registro.",
		t.Format("02/01/2006"), t.Format("15:04"), verb, docs, portal)
}

// NotifySignatures tells citizens of every signature made with their key,
// after the fact: it reads successful key.used records from the log and
// sends each citizen a message by SMS, email or both. Its position is kept
// in the store, so a restart neither skips nor floods (at least once: a
// message whose sending failed is retried on the next round, and one sent
// just before a crash may be sent again). On its first run it starts at the
// log's end. It returns when ctx is done.
//
// Reading the log, rather than hooking the signing path, keeps the
// gateways out of the signature's latency and failure modes.
func (l *Log) NotifySignatures(ctx context.Context, o NotifyOptions) error {
	if o.Contacts == nil || (o.SMS == nil && o.Email == nil) {
		return fmt.Errorf("notify signatures: %w: contacts and at least one sender are required", ErrInvalid)
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Name == "" {
		o.Name = "notify"
	}
	if o.Message == nil {
		o.Message = DefaultMessage
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "firma_audit_notifications_total",
		Help: "Messages telling citizens of signatures made with their key, by channel and outcome.",
	}, []string{"channel", "outcome"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(sent); err != nil {
			// A restarted notifier counts on in the series it had.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return fmt.Errorf("notify signatures: %w", err)
			}
			sent = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	n := &notifier{l: l, o: o, sent: sent}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		if err := n.round(ctx); err != nil && ctx.Err() == nil {
			o.Logger.Warn("signature notifications delayed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type notifier struct {
	l    *Log
	o    NotifyOptions
	sent *prometheus.CounterVec
}

// round sends what the log holds beyond the saved position.
func (n *notifier) round(ctx context.Context) error {
	pos, err := n.l.st.AuditCursor(ctx, n.o.Name)
	if err != nil {
		return err
	}
	if pos < 0 {
		pos = n.l.Size()
		return n.l.st.SetAuditCursor(ctx, n.o.Name, pos)
	}
	for {
		size := n.l.Size()
		page, err := n.l.Query(ctx, Filter{Events: []Event{KeyUsed}, Cursor: pos, Limit: 100})
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			if err := n.notify(ctx, r); err != nil {
				return err
			}
			pos = r.Seq + 1
			// A notice sent must be remembered even when shutdown began
			// meanwhile, or the next start sends it a second time.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := n.l.st.SetAuditCursor(sctx, n.o.Name, pos)
			cancel()
			if err != nil {
				return err
			}
		}
		if page.Next == 0 {
			if size > pos {
				pos = size
				return n.l.st.SetAuditCursor(ctx, n.o.Name, pos)
			}
			return nil
		}
	}
}

// notify sends the messages for one record; an error stops the round so
// the record is tried again.
func (n *notifier) notify(ctx context.Context, r *Record) error {
	if r.Outcome != Success || r.Citizen == "" {
		return nil
	}
	c, err := n.o.Contacts.Citizen(ctx, r.Citizen)
	if errors.Is(err, store.ErrNotFound) {
		return nil // a system key, or a citizen since removed
	}
	if err != nil {
		return fmt.Errorf("contacts of record %d: %w", r.Seq, err)
	}
	text := n.o.Message(r)
	for _, ch := range []struct {
		name string
		s    Sender
		to   string
	}{{"sms", n.o.SMS, c.Mobile}, {"email", n.o.Email, c.Email}} {
		if ch.s == nil || ch.to == "" {
			continue
		}
		if err := ch.s.Send(ctx, ch.to, text); err != nil {
			// An address that can never receive it: counted, skipped, and
			// not retried, or it would hold back every later citizen's
			// notice.
			if errors.Is(err, mail.ErrUndeliverable) || errors.Is(err, sms.ErrRecipient) {
				n.sent.WithLabelValues(ch.name, "dropped").Inc()
				continue
			}
			n.sent.WithLabelValues(ch.name, "error").Inc()
			return &sendError{channel: ch.name, seq: r.Seq, err: err}
		}
		n.sent.WithLabelValues(ch.name, "sent").Inc()
	}
	return nil
}

// sendError names the record, not the address: gateways' errors may carry
// the phone number or email, which must not reach the logs.
type sendError struct {
	channel string
	seq     int64
	err     error
}

func (e *sendError) Error() string {
	return fmt.Sprintf("%s notice of record %d not sent", e.channel, e.seq)
}

func (e *sendError) Unwrap() error { return e.err }
