package main

import (
	"context"
	"errors"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

// publicURL is the citizens' view of the HTTP listener, as the
// transactions step computes it for approval links.
func (a *app) publicURL() string {
	if tc := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName); tc != nil && tc.PublicURL != "" {
		return tc.PublicURL
	}
	scheme := "http"
	if a.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + a.cfg.Listen.HTTP
}

// setupWeb serves the citizen approval page under /sign/ over the
// transaction service.
func (a *app) setupWeb(ctx context.Context) error {
	svc := a.transactions()
	if svc == nil {
		return errors.New("the approval page needs the transaction service: the transactions step must run first")
	}
	cfg := config.SectionOf[web.Config](a.cfg, web.SectionName)
	if cfg == nil {
		d := web.DefaultConfig()
		cfg = &d
	}
	base := a.publicURL()
	secure := cfg.Secure(base, a.tls != nil)
	log := a.log.With("part", "web")
	h, err := web.New(web.Options{Transactions: svc, Secure: secure, BaseURL: base, Log: log, Registerer: a.reg})
	if err != nil {
		return err
	}
	h.Register(a.mux)
	if !secure {
		log.Warn("approval page cookies are not Secure: citizens must reach it over HTTPS in production (web.secure_cookies)")
	}
	log.Info("approval page ready", "url", base+web.PathPrefix+"{id}", "secure_cookies", secure)
	return nil
}
