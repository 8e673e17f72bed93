package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrUndeliverable is what Notices.Send reports for an address that can
// never receive a notice; audit.NotifySignatures skips it instead of
// retrying.
var ErrUndeliverable = errors.New("address cannot receive notices")

// DefaultNoticeSubject is the subject of signature notices.
const DefaultNoticeSubject = "Cl@ve Firma: firma realizada con su certificado"

// Notices sends texts as e-mails with one subject: the shape of
// audit.Sender, for audit.NotifySignatures.
type Notices struct {
	gw      Gateway
	subject string
	log     *slog.Logger
	dropped prometheus.Counter
}

// NewNotices returns notices through gw with the given subject
// (DefaultNoticeSubject if empty). reg, if not nil, takes
// firma_mail_notices_dropped_total.
func NewNotices(gw Gateway, subject string, log *slog.Logger, reg prometheus.Registerer) (*Notices, error) {
	if subject == "" {
		subject = DefaultNoticeSubject
	}
	if err := Check("check@example.es", subject, "x"); err != nil {
		return nil, fmt.Errorf("mail notices: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notices{gw: gw, subject: subject, log: log,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "firma_mail_notices_dropped_total",
			Help: "Notices not sent because the citizen's address is invalid or its domain refuses it for good."})}
	if reg != nil {
		if err := reg.Register(n.dropped); err != nil {
			return nil, fmt.Errorf("mail notices metrics: %w", err)
		}
	}
	return n, nil
}

// Send sends text to the address. An address that can never receive it
// (invalid, or refused for good by the relay) is logged, counted and
// reported as ErrUndeliverable, which the notifier skips: it retries
// any other failed record until it goes through. Any other failure is
// returned as it is.
func (n *Notices) Send(ctx context.Context, to, text string) error {
	err := n.gw.Send(ctx, to, n.subject, text)
	if errors.Is(err, ErrRecipient) || errors.Is(err, ErrRefused) {
		n.dropped.Inc()
		n.log.WarnContext(ctx, "signature notice dropped: the address cannot receive it", "to", Mask(to), "err", err)
		return fmt.Errorf("%w: %w", ErrUndeliverable, err)
	}
	return err
}
