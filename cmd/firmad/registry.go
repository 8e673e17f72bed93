package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
)

// registrySection is the registry section of cfg, or its defaults.
func registrySection(cfg *config.Config) registry.Config {
	if c := config.SectionOf[registry.Config](cfg, registry.SectionName); c != nil {
		return *c
	}
	return registry.DefaultConfig()
}

// setupRegistry starts the citizen registry: the SMS outbox gateway,
// RegistryService over gRPC and its REST JSON routes under /v1/registry/.
// It wires the CA both ways: the CA reads citizens' levels from the
// registry, and the registry has the CA revoke the certificates of
// citizens who lose the advanced level or are removed.
func (a *app) setupRegistry(ctx context.Context) error {
	cfg := registrySection(a.cfg)
	opt, err := cfg.Options()
	if err != nil {
		return err
	}
	log := a.log.With("part", "registry")
	outbox, err := a.smsOutbox()
	if err != nil {
		return err
	}
	opt.SMS, opt.Log, opt.Registerer = outbox, log, a.reg
	opt.Attempts = a.attempts()
	opt.PasswordGate = a.limiter().passwords
	if opt.ServiceURL == "" {
		scheme := "http"
		if a.tls != nil {
			scheme = "https"
		}
		opt.ServiceURL = scheme + "://" + a.cfg.Listen.HTTP + "/v1/registry/password"
	}
	if a.ca != nil {
		opt.Revoker = ca.CitizenRevoker{CA: a.ca}
	}
	if a.audit != nil {
		opt.Audit = a.audit
	}
	reg, err := registry.New(a.store, opt)
	if err != nil {
		return err
	}
	a.registry = reg
	if a.ca != nil {
		a.ca.SetCitizens(reg)
	}
	ops, err := api.NewAuth(a.cfg.Auth.Operators)
	if err != nil {
		return err
	}
	staff, err := api.NewStaffAuth(ops, cfg.Staff)
	if err != nil {
		return err
	}
	a.staff = staff
	svc := api.NewRegistryService(reg, staff, outbox, log)
	api.RegisterRegistry(a.grpc, svc)
	v1http.RegisterRegistry(a.mux, svc)
	purgeLog := a.log.With("part", "registry")
	a.every("registry purge", purgeEvery, func(ctx context.Context) { purge(ctx, reg, outbox, purgeLog) })
	if opt.TrustedCAs == nil {
		log.Warn("no trusted citizen CAs configured (registry.trusted_cas): electronic-certificate registration is refused")
	}
	return nil
}

// Retention of the registry's expired codes and outbox messages.
const (
	purgeEvery     = time.Hour
	smsOutboxKeeps = 7 * 24 * time.Hour
)

// purge deletes expired codes and old outbox messages (every hour), so
// that unauthenticated challenge requests cannot grow the store without
// bound and codes do not linger in the outbox.
func purge(ctx context.Context, reg *registry.Service, outbox *sms.Outbox, log *slog.Logger) {
	codes, err1 := reg.Purge(ctx)
	msgs, err2 := outbox.Purge(ctx, smsOutboxKeeps)
	if err := errors.Join(err1, err2); err != nil {
		log.Error("registry purge failed", "err", err)
	} else if codes+msgs > 0 {
		log.Info("registry purged", "codes", codes, "sms", msgs)
	}
}
