package main

import (
	"context"
	"errors"
	"time"

	"github.com/firma-cloud/firma/api/rest/cschttp"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/transaction"
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
		Name: cfg.Name, Description: cfg.Description, Logo: cfg.Logo, Log: log, Registerer: a.reg}
	if _, deprecated := attemptRules(a.cfg); deprecated {
		log.Warn("csc.otp_lockout is deprecated and overrides transactions.otp_lockout for every code; set transactions.otp_lockout instead",
			"lockout", cfg.OTPLockout)
	}
	svc, err := csc.New(opt)
	if err != nil {
		return err
	}
	cschttp.Register(a.mux, svc, portal.New(a.store, portal.Options{Log: log}), log)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Run(rctx, 10*time.Minute)
	}()
	a.onClose("csc", func() error { cancel(); <-done; return nil })
	log.Info("CSC API v2 ready", "path", cschttp.Prefix, "sad_ttl", cfg.SADTTL, "multisign", cfg.MaxSignatures)
	return nil
}
