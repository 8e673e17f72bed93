package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

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
	opt := web.Options{Transactions: svc, Secure: secure, BaseURL: base, Log: log, Registerer: a.reg}
	opt.LoginRate, opt.SMSRate = a.limiter().login, a.limiter().sms
	opt.Consents = a.consents
	// The citizen's own page at /me lists key uses from the audit log;
	// without the log or the registry there is nothing to show.
	if a.audit != nil && a.registry != nil {
		opt.Citizens, opt.Audit, opt.Portals = a.registry, a.audit, a.store
		// Signing out revokes the /me cookie on every node.
		opt.Sessions = a.store
		key, err := a.webSessionKey(ctx)
		if err != nil {
			return err
		}
		opt.SessionKey = key
	}
	h, err := web.New(opt)
	if err != nil {
		return err
	}
	h.Register(a.mux)
	if !secure {
		log.Warn("approval page cookies are not Secure: citizens must reach it over HTTPS in production (web.secure_cookies)")
	}
	// The effective URL, as links to the page are made (not "" when
	// transactions.public_url is unset).
	log.Info("approval page ready", "public_url", svc.BaseURL(), "path", web.PathPrefix+"{id}", "secure_cookies", secure,
		"citizen_page", opt.Audit != nil)
	return nil
}

// webSessionKey keys the /me sign-in cookies: derived from the
// transactions' OTP key, so every node of the token (or sharing
// transactions.otp_key_file) accepts a sign-in made on another, while the
// OTP key itself is never used for a second purpose.
func (a *app) webSessionKey(ctx context.Context) ([]byte, error) {
	tc := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName)
	path := ""
	if tc != nil {
		path = tc.OTPKeyFile
	}
	secret, err := txOTPKey(ctx, path, a.ks)
	if err != nil {
		return nil, err
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "firma-web-me-session-v1", 32)
	if err != nil {
		return nil, fmt.Errorf("web session key: %w", err)
	}
	return key, nil
}
