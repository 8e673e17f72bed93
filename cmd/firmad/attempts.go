package main

import (
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/transaction"
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
