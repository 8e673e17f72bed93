package main

import (
	"context"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

// setupSandbox serves the sandbox portal's return page (/sandbox/return)
// when SMS codes go to the sandbox outbox, as they do out of the box: the
// README's examples and the example clients send citizens back to it.
func (a *app) setupSandbox(ctx context.Context) error {
	cfg := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName)
	if a.tx == nil || cfg == nil || cfg.SMS.Gateway == "http" {
		return nil
	}
	web.RegisterSandbox(a.mux)
	a.log.Info("sandbox return page ready", "url", a.tx.BaseURL()+web.SandboxReturnPath)
	return nil
}
