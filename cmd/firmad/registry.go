package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
)

// EnvRegistryConfig names a YAML file with the registry settings
// (registry.Config: staff tokens, trusted citizen CAs, video-call hours,
// lockout and code lifetimes).
// TODO(issue 3): read a "registry:" section once config.Config carries
// registry.Config, and keep this variable as an override.
const EnvRegistryConfig = "FIRMA_REGISTRY_CONFIG"

// registrySettings returns the registry configuration: the defaults, then
// the file named by FIRMA_REGISTRY_CONFIG if set. Unknown keys are errors.
func registrySettings(getenv func(string) string) (registry.Config, error) {
	cfg := registry.DefaultConfig()
	path := getenv(EnvRegistryConfig)
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("registry config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("registry config %s: %w", path, err)
	}
	return cfg, nil
}

// setupRegistry starts the citizen registry: the SMS outbox gateway,
// RegistryService over gRPC and its REST JSON routes under /v1/registry/.
// It wires the CA both ways: the CA reads citizens' levels from the
// registry, and the registry has the CA revoke the certificates of
// citizens who lose the advanced level or are removed.
func (a *app) setupRegistry(ctx context.Context) error {
	cfg, err := registrySettings(os.Getenv)
	if err != nil {
		return err
	}
	opt, err := cfg.Options()
	if err != nil {
		return err
	}
	log := a.log.With("part", "registry")
	outbox, err := sms.NewOutbox(a.store, sms.OutboxOptions{Log: a.log.With("part", "sms"), Registerer: a.reg})
	if err != nil {
		return err
	}
	opt.SMS, opt.Log, opt.Registerer = outbox, log, a.reg
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
	if l := a.auditLog(); l != nil {
		opt.Audit = l
	}
	reg, err := registry.New(a.store, opt)
	if err != nil {
		return err
	}
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
	svc := api.NewRegistryService(reg, staff, outbox, log)
	api.RegisterRegistry(a.grpc, svc)
	svc.RegisterRegistryHTTP(a.mux)
	stop := make(chan struct{})
	done := make(chan struct{})
	go purgeLoop(reg, outbox, a.log.With("part", "registry"), stop, done)
	a.onClose("registry purge", func() error { close(stop); <-done; return nil })
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

// purgeLoop deletes expired codes and old outbox messages every hour, so
// that unauthenticated challenge requests cannot grow the store without
// bound and codes do not linger in the outbox.
func purgeLoop(reg *registry.Registry, outbox *sms.Outbox, log *slog.Logger, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		codes, err1 := reg.Purge(ctx)
		msgs, err2 := outbox.Purge(ctx, smsOutboxKeeps)
		cancel()
		if err := errors.Join(err1, err2); err != nil {
			log.Error("registry purge failed", "err", err)
		} else if codes+msgs > 0 {
			log.Info("registry purged", "codes", codes, "sms", msgs)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
