package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/tsa"
)

// setupTransactions starts the signing transactions: the portal registry
// (PortalService, operators only), the portal API (TransactionService on
// gRPC, REST JSON under /api/v1/), one-time passwords by SMS (outbox or
// http gateway) and the background loop that expires transactions,
// resumes signing interrupted by a stop and delivers portal callbacks.
func (a *app) setupTransactions(ctx context.Context) error {
	cfg := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName)
	if cfg == nil {
		d := transaction.DefaultConfig()
		cfg = &d
	}
	if a.ca == nil {
		return errors.New("transactions need the certificate authority: the ca step must run first")
	}
	log := a.log.With("part", "transactions")
	gw, err := a.smsGateway()
	if err != nil {
		return err
	}
	if a.registry == nil {
		return errors.New("transactions need the citizen registry: the registry step must run first")
	}
	key, err := txOTPKey(ctx, cfg.OTPKeyFile, a.ks)
	if err != nil {
		return err
	}
	base := cfg.PublicURL
	if base == "" {
		scheme := "http"
		if a.tls != nil {
			scheme = "https"
		}
		base = scheme + "://" + a.cfg.Listen.HTTP
		if strings.HasSuffix(a.cfg.Listen.HTTP, ":0") {
			log.Warn("transactions.public_url is not set and listen.http has no fixed port: approval links will not work", "base", base)
		}
	}
	policies, err := cfg.Policies()
	if err != nil {
		return err
	}
	portals := portal.New(a.store, portal.Options{Log: log, AllowHTTP: cfg.AllowHTTPPortals})
	svc, err := transaction.New(transaction.Options{
		Store: a.store, Portals: portals, Citizens: a.registry, Certificates: a.ca, Signing: a.signing, SMS: gw,
		OTPKey: key, OTP: cfg.Rules(), Attempts: a.attempts(), BaseURL: base, TTL: cfg.TTL, Retention: cfg.Retention,
		Policies: policies, PortalPolicies: cfg.PortalPolicies,
		Timestamper:      signer.TimestamperFunc(tsa.TokenDER(a.tsaStamper())),
		Validation:       a.validation(),
		UpgradeGrace:     cfg.UpgradeGrace,
		HTTPClient:       &http.Client{Timeout: cfg.CallbackTimeout},
		CallbackAttempts: cfg.CallbackAttempts,
		SignWorkers:      cfg.SignWorkers, SignQueue: cfg.SignQueue, SignLease: cfg.SignLease,
		SignExpiry: cfg.SignExpiry,
		Log:        log, Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	a.tx = svc
	api.RegisterPortals(a.grpc, api.NewPortalService(portals, log).WithAuditor(a.audit))
	api.RegisterTransactions(a.grpc, api.NewTransactionService(svc, portals, log))
	portalhttp.NewHandler(svc, portals, log, int64(cfg.MaxRequestBytes)).Register(a.mux)

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The workers sign what citizens approve; the loop below feeds them
	// what is due from the store. At shutdown they stop taking work and
	// hand back what they hold, within listen.shutdown_timeout.
	svc.Start(rctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.Run(rctx); err != nil {
			log.Error("transaction loop stopped", "err", err)
		}
	}()
	a.onClose("transactions", func() error {
		sctx, stop := context.WithTimeout(context.Background(), a.cfg.Listen.ShutdownTimeout)
		defer stop()
		err := svc.Stop(sctx)
		cancel()
		<-done
		return err
	})
	log.Info("signing transactions ready", "public_url", base, "sms_gateway", cfg.SMS.Gateway, "ttl", cfg.TTL,
		"sign_workers", cfg.SignWorkers)
	return nil
}

// smsGateway is the SMS gateway of the transactions section, made once:
// transaction and CSC one-time passwords and the audit log's notices to
// citizens all go through it (an http gateway registers its metrics
// once). Setup steps run one at a time, so no lock.
func (a *app) smsGateway() (sms.Gateway, error) {
	if a.sms != nil {
		return a.sms, nil
	}
	cfg := config.SectionOf[transaction.Config](a.cfg, transaction.SectionName)
	if cfg == nil {
		d := transaction.DefaultConfig()
		cfg = &d
	}
	gw, err := a.otpGateway(cfg)
	if err != nil {
		return nil, err
	}
	a.sms = gw
	return gw, nil
}

// smsOutbox is the sandbox SMS gateway (the outbox in the store), made
// once: registration codes, OTPs and notices all go through the one
// whose firma_sms_sent_total and firma_sms_failed_total are exported, so
// the metrics count every message the outbox holds.
func (a *app) smsOutbox() (*sms.Outbox, error) {
	if a.outbox != nil {
		return a.outbox, nil
	}
	o, err := sms.NewOutbox(a.store, sms.OutboxOptions{Log: a.log.With("part", "sms"), Registerer: a.reg})
	if err != nil {
		return nil, err
	}
	a.outbox = o
	return o, nil
}

// otpGateway makes the SMS gateway the transactions section configures.
func (a *app) otpGateway(cfg *transaction.Config) (sms.Gateway, error) {
	log := a.log.With("part", "sms")
	if cfg.SMS.Gateway != "http" {
		return a.smsOutbox()
	}
	var auth string
	if cfg.SMS.AuthFile != "" {
		b, err := os.ReadFile(cfg.SMS.AuthFile)
		if err != nil {
			return nil, fmt.Errorf("transactions.sms.auth_file: %w", err)
		}
		auth = strings.TrimSpace(string(b))
	}
	retries := cfg.SMS.Retries
	if retries == 0 {
		retries = -1 // the section's 0 means none; HTTPOptions' 0 means the default
	}
	return sms.NewHTTP(sms.HTTPOptions{URL: cfg.SMS.URL, AuthHeader: cfg.SMS.AuthHeader, AuthValue: auth, From: cfg.SMS.From,
		Timeout: cfg.SMS.Timeout, Retries: retries, Log: log, Registerer: a.reg})
}

// txOTPKey is the key the transactions' OTP and session hashes are keyed
// with: from the file transactions.otp_key_file if set, else derived from
// an RSA key in the HSM, the same on every node of the token.
func txOTPKey(ctx context.Context, path string, ks transaction.KeySource) ([]byte, error) {
	if path == "" {
		return transaction.DeriveOTPKey(ctx, ks)
	}
	return readOTPKey(path)
}

func readOTPKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("transactions.otp_key_file: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("transactions.otp_key_file %s: want at least 32 bytes in hex", path)
	}
	return k, nil
}
