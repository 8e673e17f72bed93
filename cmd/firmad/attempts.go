package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

// attemptRules is the one wrong-code rule (transactions.otp_max_tries,
// otp_failure_window, otp_lockout) that the approval page, the CSC API
// and the registry's SMS codes all follow. The deprecated csc.otp_lockout,
// when set, still overrides the lockout; deprecated reports that it did.
func attemptRules(cfg *config.Config) (rules policy.AttemptRules, deprecated bool) {
	tc := config.SectionOf[transaction.Config](cfg, transaction.SectionName)
	if tc == nil {
		d := transaction.DefaultConfig()
		tc = &d
	}
	rules = tc.AttemptRules()
	if cc := config.SectionOf[csc.Config](cfg, csc.SectionName); cc != nil && cc.OTPLockout != 0 {
		rules.Lockout, deprecated = cc.OTPLockout, true
	}
	return rules.WithDefaults(), deprecated
}

// attempts is the attempt policy on the store: each service gets its own
// value, all with the same rules on the same counters, so they count and
// lock together, on this node and every other sharing the database.
func (a *app) attempts() *policy.Attempts {
	rules, _ := attemptRules(a.cfg)
	return policy.NewAttempts(a.store, rules)
}

// attemptSweepWindow is the longest time any attempt-store cell matters
// after its last write: the wrong-code window, the password windows (per
// DNI and per client), and a /me session's lifetime for sign-out cells.
// A lock matters until it ends, whatever its length.
func attemptSweepWindow(cfg *config.Config) time.Duration {
	rules, _ := attemptRules(cfg)
	return max(rules.Window, policy.DefaultPasswordRules().Window, policy.DefaultPasswordClientRules().Window,
		web.MeSessionLifetime)
}

// setupAttemptSweep deletes, every store.attempt_sweep_interval, the
// attempt counters that count nothing any more, which would otherwise
// grow by one row per citizen, client address and sign-out for ever.
// Every node may sweep: the delete is one statement, safe against
// concurrent updates.
func (a *app) setupAttemptSweep(context.Context) error {
	swept := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "firma_store_attempt_rows_swept_total",
		Help: "Attempt counters (wrong codes and passwords, /me sign-outs) deleted once they counted nothing.",
	})
	if a.reg != nil {
		if err := a.reg.Register(swept); err != nil {
			return err
		}
	}
	window := attemptSweepWindow(a.cfg)
	log := a.log.With("part", "attempts")
	a.every("attempt sweep", a.cfg.Store.AttemptSweepInterval, func(ctx context.Context) {
		n, err := a.store.SweepAttempts(ctx, time.Now(), window)
		if err != nil {
			log.Error("attempt sweep failed", "err", err)
			return
		}
		swept.Add(float64(n))
		if n > 0 {
			log.Info("attempt counters swept", "rows", n)
		}
	})
	return nil
}
