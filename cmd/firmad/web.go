package main

import (
	"context"
	"errors"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

// publicURL is the configured citizens' view of the HTTP listener
// (transactions.public_url), or "" if none is set.
func (a *app) publicURL() string {
	if tc := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName); tc != nil {
		return tc.PublicURL
	}
	return ""
}

// setupWeb serves the citizen approval page under /sign/ over the
// transaction service.
func (a *app) setupWeb(ctx context.Context) error {
	svc := a.tx
	if svc == nil {
		return errors.New("the approval page needs the transaction service: the transactions step must run first")
	}
	cfg := config.SectionOf[web.Config](a.cfg, web.SectionName)
	if cfg == nil {
		d := web.DefaultConfig()
		cfg = &d
	}
	// Without a public URL, forms must come from the host the request
	// names: the listen address (":8080", "0.0.0.0:8080") is not what a
	// browser puts in Origin.
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
	log.Info("approval page ready", "public_url", base, "path", web.PathPrefix+"{id}", "secure_cookies", secure)
	return nil
}
