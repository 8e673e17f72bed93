package main

import (
	"context"
	"errors"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/transaction"
)

// setupRetimestamp starts, when transactions.retimestamp.enabled, the job
// that renews the archive timestamps of the stored B-LTA results before
// their TSA certificate expires. Off by default. Every node that enables
// it renews: two renewals of one result both leave a valid signature.
func (a *app) setupRetimestamp(ctx context.Context) error {
	cfg := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName)
	if cfg == nil || !cfg.Retimestamp.Enabled {
		return nil
	}
	if a.tx == nil {
		return errors.New("transactions.retimestamp needs the transactions: that step must run first")
	}
	r, err := a.tx.NewRetimestamper(cfg.Retimestamp, a.reg)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(rctx)
	}()
	a.onClose("archive timestamp renewal", func() error { cancel(); <-done; return nil })
	a.log.Info("archive timestamp renewal on", "interval", cfg.Retimestamp.Interval, "margin", cfg.Retimestamp.Margin)
	return nil
}
