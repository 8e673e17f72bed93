package main

import (
	"context"
	"errors"
	"time"

	"github.com/firma-cloud/firma/api/rest/firehttp"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/portal"
)

// setupFire serves the FIRe-compatible endpoint (fire.path, by default
// FIRe's /fire-signature/fireService) when fire.enabled: FIRe clients'
// transactions and batches are the transaction service's, approved on
// the same page.
func (a *app) setupFire(ctx context.Context) error {
	cfg := config.SectionOf[fire.Config](a.cfg, fire.SectionName)
	if cfg == nil || !cfg.Enabled {
		return nil
	}
	if a.tx == nil {
		return errors.New("the FIRe endpoint needs the transaction service: the transactions step must run first")
	}
	log := a.log.With("part", "fire")
	if a.tx.TTL() < fire.MinLifetime {
		log.Warn("transactions.ttl is under FIRe's 600 s: FIRe clients may find transactions expired sooner than they expect", "ttl", a.tx.TTL())
	}
	svc, err := fire.New(fire.Options{Store: a.store, Transactions: a.tx, Portals: portal.New(a.store, portal.Options{Log: log}),
		ReturnBase: a.tx.BaseURL() + firehttp.ReturnPath(cfg.Path), MaxBatch: cfg.MaxBatch, Log: log})
	if err != nil {
		return err
	}
	// Bodies held at once: eight of the largest, waiting as other
	// bounded requests do (limits.queue_wait).
	bytes := limit.NewGate(8*int64(cfg.MaxRequestBytes), a.lim.cfg.QueueWait)
	bytes.Name = "fire_bytes"
	h, err := firehttp.New(svc, firehttp.Options{Path: cfg.Path, MaxParamBytes: cfg.MaxParamBytes, MaxRequestBytes: cfg.MaxRequestBytes,
		CertHeader: cfg.CertHeader, Bytes: bytes, Log: log, Registerer: a.reg})
	if err != nil {
		return err
	}
	h.Register(a.mux)
	a.every("fire purge", 10*time.Minute, func(ctx context.Context) {
		if n, err := svc.Purge(ctx); err != nil {
			log.Warn("purging expired FIRe transactions", "err", err)
		} else if n > 0 {
			log.Info("expired FIRe transactions purged", "count", n)
		}
	})
	log.Info("FIRe endpoint ready", "path", cfg.Path, "cert_header", cfg.CertHeader != "", "tls", a.tls != nil)
	return nil
}
