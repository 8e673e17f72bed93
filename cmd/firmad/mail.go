package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/store"
)

// setupMail makes the mail gateway of audit.mail and serves its outbox to
// operators (MailService, GET /v1/mail/outbox). It returns the gateway
// wrapped for signature notices, or nil when notices do not go by e-mail.
// The outbox is served whatever audit.notify says, so an operator can
// still read what it holds.
func (a *app) setupMail(cfg audit.Config, log *slog.Logger) (*mail.Notices, error) {
	log = log.With("part", "mail")
	ops, err := api.NewAuth(a.cfg.Auth.Operators)
	if err != nil {
		return nil, err
	}
	var gw mail.Gateway
	var outbox api.MailReader
	switch cfg.Mail.Gateway {
	case "smtp":
		if !cfg.Emails() {
			break
		}
		opt, err := cfg.Mail.SMTPOptions()
		if err != nil {
			return nil, err
		}
		opt.Log, opt.Registerer = log, a.reg
		s, err := mail.NewSMTP(opt)
		if err != nil {
			return nil, err
		}
		gw = s
		log.Info("mail notices through the SMTP relay", "addr", cfg.Mail.SMTPAddr, "tls", cfg.Mail.TLS, "auth", cfg.Mail.Username != "")
	default:
		o, err := mail.NewOutbox(a.store, mail.OutboxOptions{Log: log, Registerer: a.reg})
		if err != nil {
			return nil, err
		}
		gw, outbox = o, o
		// The outbox holds citizens' addresses and is no archive.
		a.every("mail outbox purge", purgeEvery, func(ctx context.Context) {
			if n, err := o.Purge(ctx, cfg.Mail.OutboxKeeps); err != nil {
				log.Error("mail outbox purge failed", "err", err)
			} else if n > 0 {
				log.Info("mail outbox purged", "messages", n)
			}
		})
	}
	svc := api.NewMailService(outbox, ops, log)
	svc.Register(a.grpc)
	v1http.RegisterMail(a.mux, svc)
	if !cfg.Emails() {
		return nil, nil
	}
	return mail.NewNotices(gw, cfg.Mail.Subject, log, a.reg)
}

// portalNamer looks a portal up; store.Store is one.
type portalNamer interface {
	Portal(ctx context.Context, id string) (*store.Portal, error)
}

// portalNamed writes the default notice, naming the portal by the name
// citizens know it by rather than its ID (the ID if it cannot be looked
// up: a notice is worth more late-named than not sent). Both channels use
// it: with portal.MaxName the longest notice is still one valid SMS.
func portalNamed(st portalNamer) func(*audit.Record) string {
	return func(r *audit.Record) string {
		if r.Portal != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p, err := st.Portal(ctx, r.Portal)
			cancel()
			if err == nil && p.Name != "" {
				named := *r
				named.Portal = p.Name
				r = &named
			}
		}
		return audit.DefaultMessage(r)
	}
}
