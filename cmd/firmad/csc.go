package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/firma-cloud/firma/api/rest/cschttp"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/tsa"
	"github.com/firma-cloud/firma/web"
)

// setupCSC serves the Cloud Signature Consortium API v2 under /csc/v2/:
// portals authenticate with their API key or client certificate, citizens
// authorise with an SMS one-time password under the transactions
// section's OTP rules and key.
func (a *app) setupCSC(ctx context.Context) error {
	cfg := config.SectionOf[csc.Config](a.cfg, csc.SectionName)
	if cfg == nil {
		d := csc.DefaultConfig()
		cfg = &d
	}
	log := a.log.With("part", "csc")
	if !cfg.Enabled {
		log.Info("CSC API disabled (csc.enabled)")
		return nil
	}
	if a.ca == nil {
		return errors.New("the CSC API needs the certificate authority: the ca step must run first")
	}
	tc := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName)
	if tc == nil {
		d := transaction.DefaultConfig()
		tc = &d
	}
	gw, err := a.smsGateway()
	if err != nil {
		return err
	}
	key, err := txOTPKey(ctx, tc.OTPKeyFile, a.ks)
	if err != nil {
		return err
	}
	hasher, err := policy.NewOTPHasher(key)
	if err != nil {
		return err
	}
	opt := csc.Options{Store: a.store, Certificates: a.ca, Keys: a.ks, Signing: a.signing, Citizens: a.store, SMS: gw, OTP: hasher,
		Rules: tc.Rules(), Attempts: a.attempts(), SADTTL: cfg.SADTTL, MaxSignatures: cfg.MaxSignatures, ExplicitOff: !cfg.ExplicitAuthorize,
		Timestamper: signer.TimestamperFunc(tsa.TokenDER(a.tsaStamper())),
		Name:        cfg.Name, Description: cfg.Description, Logo: cfg.Logo, Log: log, Registerer: a.reg}
	if cfg.OAuth {
		if a.registry == nil {
			return errors.New("the CSC OAuth server needs the citizen registry (passwords): the registry step must run first")
		}
		// Without a public URL the base is relative: the page and its
		// redirects work, but info's oauth2 is then not absolute.
		opt.OAuth2URL = strings.TrimSuffix(a.publicURL(), "/") + strings.TrimSuffix(cschttp.Prefix, "/")
	}
	if _, deprecated := attemptRules(a.cfg); deprecated {
		log.Warn("csc.otp_lockout is deprecated and overrides transactions.otp_lockout for every code; set transactions.otp_lockout instead",
			"lockout", cfg.OTPLockout)
	}
	svc, err := csc.New(opt)
	if err != nil {
		return err
	}
	cschttp.Register(a.mux, svc, portal.New(a.store, portal.Options{Log: log}), log)
	var srv *oauth.Server
	if cfg.OAuth {
		srv, err = oauth.New(oauth.Options{Store: a.store, Clients: a.store, Passwords: a.registry, CSC: svc,
			ConsentURL: strings.TrimSuffix(a.publicURL(), "/") + web.ConsentPath, Log: log.With("part", "csc-oauth")})
		if err != nil {
			return err
		}
		cschttp.RegisterOAuth(a.mux, svc, srv, log)
		a.consents = srv
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		svc.Run(rctx, 10*time.Minute)
	}()
	if srv != nil {
		go func() {
			defer func() { done <- struct{}{} }()
			srv.Run(rctx, 10*time.Minute)
		}()
	}
	a.onClose("csc", func() error {
		cancel()
		<-done
		if srv != nil {
			<-done
		}
		return nil
	})
	log.Info("CSC API v2 ready", "path", cschttp.Prefix, "sad_ttl", cfg.SADTTL, "multisign", cfg.MaxSignatures,
		"oauth", cfg.OAuth, "explicit_authorize", cfg.ExplicitAuthorize)
	return nil
}
