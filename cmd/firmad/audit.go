package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store/postgres"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/tsa"
)

// auditKeyOwner owns the checkpoint key in the keystore.
const auditKeyOwner = "system:audit"

// auditLog returns the audit log, nil before setupAudit ran. The key-call
// interceptor looks it up per call, since the gRPC server is made first.
func (a *app) auditLog() *audit.Log { return a.audit }

// auditSection is the audit section of cfg, or its defaults.
func auditSection(cfg *config.Config) audit.Config {
	if c := config.SectionOf[audit.Config](cfg, audit.SectionName); c != nil {
		return *c
	}
	return audit.DefaultConfig()
}

// setupAudit starts the audit log: group commit into the store, a
// checkpoint signed every checkpoint_interval (and at shutdown) with an
// ECDSA P-256 token key in the HSM and timestamped by the built-in TSA
// when there is one, SMS and e-mail notices of signatures to citizens
// (audit.notify, audit.mail), and
// AuditService for the auditors in audit.auditors, who have credentials of
// their own and can call nothing else.
func (a *app) setupAudit(ctx context.Context) error {
	cfg := auditSection(a.cfg)
	log := a.log.With("part", "audit")
	// Before anything reads the log's size: the journal first moves in
	// what a crashed run left in it.
	if db, ok := a.store.(*sqlite.DB); ok && cfg.Journal {
		if err := db.JournalAudit(ctx); err != nil {
			return err
		}
		a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "firma_store_audit_journal_records",
			Help: "Audit records committed to the SQLite journal and not yet moved into the tables."},
			func() float64 { return float64(db.AuditJournalWaiting()) }))
	}
	signer, err := a.auditKey(ctx)
	if err != nil {
		return err
	}
	ns, err := audit.NewNoteSigner(cfg.Origin, signer)
	if err != nil {
		return err
	}
	vkey, err := audit.NoteVerifierKey(cfg.Origin, signer.Public())
	if err != nil {
		return err
	}
	keyFile := cfg.PseudonymKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(filepath.Dir(a.cfg.Store.Path), "audit-pseudonym.key")
	}
	pkey, err := audit.EnsurePseudonymKey(keyFile)
	if err != nil {
		return err
	}
	// The service's TSA (a.stamper): with the built-in one, until the CA
	// exists its Timestamp fails and checkpoints go out signed but
	// untimestamped (logged, counted).
	opt := audit.Options{Origin: cfg.Origin, Signer: ns, PseudonymKey: pkey, Flush: cfg.Flush, MaxBatch: cfg.MaxBatch, Linger: cfg.Linger,
		Timestamper: audit.TimestamperFunc(tsa.TokenDER(a.tsaStamper())), Registerer: a.reg, Logger: log}
	// Notices of signatures go to citizens by SMS through the OTPs'
	// gateway (the outbox in development, the provider's http API in
	// production), by e-mail through audit.mail, or both.
	var texts sms.Gateway
	if cfg.Texts() {
		if texts, err = a.smsGateway(); err != nil {
			return err
		}
	}
	var emails audit.Sender
	if n, err := a.setupMail(cfg, log); err != nil {
		return err
	} else if n != nil {
		emails = n // a nil *mail.Notices would be a non-nil Sender
	}
	l, err := audit.Open(ctx, a.store, opt)
	if err != nil {
		return err
	}
	a.audit = l
	cctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.RunCheckpoints(cctx, cfg.CheckpointInterval) })
	// One notifier per channel, each with its own position in the log and
	// its own lease: a mail relay that is down then neither holds back
	// nor repeats the SMS notices, nor the other way round. Both name the
	// portal as citizens know it.
	named := portalNamed(a.store)
	notifiers := []struct {
		lease string
		opt   audit.NotifyOptions
	}{
		{"audit-notify", audit.NotifyOptions{Name: "notify", SMS: texts, Message: named}},
		{"audit-notify-email", audit.NotifyOptions{Name: "notify-email", Email: emails, Message: named}},
	}
	for _, n := range notifiers {
		if n.opt.SMS == nil && n.opt.Email == nil {
			continue
		}
		n.opt.Contacts, n.opt.Registerer, n.opt.Logger = a.store, a.reg, log
		wg.Go(func() {
			a.exclusive(cctx, n.lease, log, func(ctx context.Context) {
				if err := l.NotifySignatures(ctx, n.opt); err != nil {
					log.Error("signature notifications stopped", "err", err, "channel", n.opt.Name)
				}
			})
		})
	}
	// Added after the keystore, so closed before it: the final checkpoint
	// still reaches the HSM.
	a.onClose("audit", func() error {
		cancel()
		wg.Wait()
		return l.Close()
	})
	a.ready("audit", func(ctx context.Context) error {
		_, err := a.store.AuditSize(ctx)
		return err
	})
	auditors, err := api.NewAuditors(cfg.Auditors)
	if err != nil {
		return err
	}
	a.auditors = auditors
	operators, err := api.NewAuth(a.cfg.Auth.Operators)
	if err != nil {
		return err
	}
	firmav1.RegisterAuditServiceServer(a.grpc, api.NewAuditService(l, vkey, auditors, operators, log))
	if len(cfg.Auditors) == 0 {
		log.Warn("no auditors configured (audit.auditors): nobody can read the audit log over the API")
	}
	log.Info("audit log open", "records", l.Size(), "origin", cfg.Origin, "verifier_key", vkey,
		"checkpoint_interval", cfg.CheckpointInterval, "pseudonym_key_file", keyFile)
	return nil
}

// auditKey returns the checkpoint signer: the oldest live token key of
// auditKeyOwner, made on first start. Auditors pin its verifier key, so it
// is never replaced behind their backs.
func (a *app) auditKey(ctx context.Context) (*keystore.Signer, error) {
	keys, err := a.ks.Keys(ctx, auditKeyOwner, "", 100)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	var k *keystore.Key
	for _, c := range keys {
		if c.DestroyedAt.IsZero() && c.Type == keystore.ECP256 && (k == nil || c.CreatedAt.Before(k.CreatedAt)) {
			k = c
		}
	}
	if k == nil {
		if k, err = a.ks.GenerateMode(ctx, auditKeyOwner, keystore.ECP256, keystore.ModeToken); err != nil {
			return nil, fmt.Errorf("audit key: %w", err)
		}
		a.log.Info("audit checkpoint key made in the HSM", "key_id", k.ID)
	}
	s, err := a.ks.Signer(ctx, k.ID)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return s, nil
}

// exclusive runs fn while this node holds the named lease, so that on a
// shared PostgreSQL store one node at a time does the job (two notifiers
// would each send every notice). A node that loses the lease stops fn and
// tries to take it again; on SQLite, a single node's store, fn just runs.
func (a *app) exclusive(ctx context.Context, name string, log *slog.Logger, fn func(context.Context)) {
	pg, ok := a.store.(*postgres.DB)
	if !ok {
		fn(ctx)
		return
	}
	const retry = 15 * time.Second
	for ctx.Err() == nil {
		lease, err := pg.TryLease(ctx, name)
		if err != nil {
			if !errors.Is(err, postgres.ErrLeaseHeld) {
				log.Warn("cannot take lease", "lease", name, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		log.Info("lease taken", "lease", name)
		jctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn(jctx)
		}()
		t := time.NewTicker(retry)
	watch:
		for {
			select {
			case <-done:
				break watch
			case <-t.C:
				if err := lease.Check(ctx); err != nil {
					log.Warn("lease lost", "lease", name, "err", err)
					break watch
				}
			}
		}
		t.Stop()
		stop()
		<-done
		lease.Release()
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}
