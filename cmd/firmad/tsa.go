package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firma-cloud/firma/api/rest/tsahttp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/problem"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/tsa"
)

// Built-in TSA constants; the settings are the tsa section (tsa.Config).
const (
	tsaUnit = "default"
	// caIssuing is the ca package's store name of the issuing CA.
	caIssuing = "issuing"
	// tsaRetry spaces attempts to load the TSA while there is no CA yet.
	tsaRetry = 5 * time.Second
	// tsaRefresh is how often a running firmad reloads the TSA unit, so
	// that a key rollover (tsa.LoadUnit) happens without a restart and
	// replicas pick up the unit another replica rolled over.
	tsaRefresh = time.Hour
	// tsaCloseTimeout bounds recording the last audit interval's summary
	// on shutdown.
	tsaCloseTimeout = 30 * time.Second
)

// errTSANotSetUp means there is no issuing CA to certify the TSA yet.
var errTSANotSetUp = errors.New("built-in TSA not set up: no issuing CA yet (run firmactl init)")

// builtinTSA is the built-in TSA, loaded on first use once the issuing CA
// exists, so that a firmad started before 'firmactl ca init' picks it up
// without a restart, as the CA itself does.
type builtinTSA struct {
	a   *app
	srv atomic.Pointer[tsa.Server]
	// sg is the signing service its key signs through, set by
	// setupSigning; the audit log's checkpointer may ask for a timestamp
	// before that, and is told the TSA is not set up yet.
	sg atomic.Pointer[signing.Service]

	// handler is the HTTP handler of srv, made once per server rather
	// than per request (a logger With and a closure each).
	handler atomic.Pointer[tsaHandler]

	mu      sync.Mutex
	lastTry time.Time
	retired []*tsa.Server // replaced, their last summary not yet recorded
}

// close records the audit summaries of the current server and of any
// replaced one still owing its own.
func (b *builtinTSA) close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, s := range append(b.retired, b.srv.Load()) {
		if s != nil {
			errs = append(errs, s.Close(ctx))
		}
	}
	b.retired = nil
	return errors.Join(errs...)
}

var (
	_ tsa.Stamper  = (*builtinTSA)(nil)
	_ http.Handler = (*builtinTSA)(nil)
)

// tsaSection is the tsa section of cfg, or its defaults.
func tsaSection(cfg *config.Config) *tsa.Config {
	if c := config.SectionOf[tsa.Config](cfg, tsa.SectionName); c != nil {
		return c
	}
	d := tsa.DefaultConfig()
	return &d
}

// tsaStamper returns the service's timestamp source for CAdES-B-T,
// PAdES-B-T and audit checkpoints (wrap it with tsa.TokenDER where a DER
// token is wanted): the external TSAs of tsa.urls, or the built-in TSA in
// process, whose Timestamp fails with tsa.ErrUnavailable until the CA
// exists.
func (a *app) tsaStamper() tsa.Stamper { return a.stamper }

// setupStamper makes the timestamp source before the audit log, which
// timestamps its checkpoints with it; the built-in TSA loads its key and
// certificate only on first use, once the audit log can record its tokens.
func (a *app) setupStamper(ctx context.Context) error {
	cfg := tsaSection(a.cfg)
	if !cfg.External() {
		a.builtin = &builtinTSA{a: a}
		a.stamper = a.builtin
		return nil
	}
	roots, err := cfg.RootPool()
	if err != nil {
		return fmt.Errorf("tsa: %w", err)
	}
	policy, err := cfg.PolicyOID()
	if err != nil {
		return fmt.Errorf("tsa.policy: %w", err)
	}
	retries := cfg.Retries
	if retries == 0 {
		retries = -1 // the section's 0 means none; ClientConfig's 0 means the default
	}
	c, err := tsa.NewClient(tsa.ClientConfig{URLs: cfg.URLs, Roots: roots, Policy: policy, Timeout: cfg.Timeout, Retries: retries,
		BreakerCooldown: cfg.BreakerCooldown, Logger: a.log.With("part", "tsa"), Registerer: a.reg})
	if err != nil {
		return err
	}
	a.stamper = c
	// Not ready while every external TSA is known unreachable: B-T
	// signatures would fail here and may succeed on another node.
	a.ready("tsa", func(context.Context) error { return c.Reachable() })
	a.log.Info("timestamps from external TSAs; the built-in TSA is off", "tsas", len(cfg.URLs))
	return nil
}

// setupTSA serves the built-in RFC 3161 TSA: POST
// application/timestamp-query to /tsa, and its certificate chain (PEM) at
// /tsa/certs. Its key is a token key in the HSM, certified by the built-in
// issuing CA; its key use is one audit interval at a time (tsa.audit_interval),
// each token's detail in the issuance log.
func (a *app) setupTSA(ctx context.Context) error {
	b := a.builtin
	if b == nil {
		return nil // external TSAs (tsa.urls): nothing to serve
	}
	if _, err := b.server(ctx); err != nil && !errors.Is(err, errTSANotSetUp) {
		return err
	} else if err != nil {
		a.log.Warn("built-in TSA answers 503 until 'firmactl init' has set up the CA", "err", err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go b.refreshLoop(stop, done)
	// Added after the audit log, so run before it closes: the last
	// interval's summary is recorded (and the audit log's final
	// checkpoint then goes untimestamped, since the TSA is closed).
	a.onClose("tsa", func() error {
		close(stop)
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), tsaCloseTimeout)
		defer cancel()
		return b.close(ctx)
	})
	a.mux.Handle("/tsa", b)
	a.mux.HandleFunc("/tsa/certs", b.serveCerts)
	a.ready("tsa", func(ctx context.Context) error {
		srv, err := b.server(ctx)
		if errors.Is(err, errTSANotSetUp) {
			return nil // reported by the CA's own state, not a fault of this node
		}
		if err != nil {
			return err
		}
		if c := srv.Certificate(); time.Now().After(c.NotAfter) {
			return fmt.Errorf("tsa certificate expired at %s", c.NotAfter.Format(time.RFC3339))
		}
		return nil
	})
	return nil
}

// server returns the TSA, loading it if needed; at most one load runs at a
// time and, while there is no CA, one every tsaRetry.
func (b *builtinTSA) server(ctx context.Context) (*tsa.Server, error) {
	if s := b.srv.Load(); s != nil {
		return s, nil
	}
	if b.sg.Load() == nil {
		// Not a try: the first request after start-up loads it at once.
		return nil, fmt.Errorf("%w: the signing service is not up yet", errTSANotSetUp)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.srv.Load(); s != nil {
		return s, nil
	}
	if !b.lastTry.IsZero() && time.Since(b.lastTry) < tsaRetry {
		return nil, errTSANotSetUp
	}
	b.lastTry = time.Now()
	s, err := b.load(ctx)
	if err != nil {
		return nil, err
	}
	b.srv.Store(s)
	return s, nil
}

// refreshLoop reloads the TSA every tsaRefresh until stop is closed.
func (b *builtinTSA) refreshLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(tsaRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			b.refresh(ctx)
			cancel()
		}
	}
}

// refresh reloads the unit and swaps the server in if its key or
// certificate changed; requests in flight finish on the old one.
func (b *builtinTSA) refresh(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.srv.Load()
	if old == nil {
		return // not set up yet: server() retries on demand
	}
	s, err := b.load(ctx)
	if err != nil {
		b.a.log.Error("built-in TSA reload failed; serving with the current key", "err", err)
		return
	}
	if !s.Certificate().Equal(old.Certificate()) {
		b.srv.Store(s)
		// The old key's last interval closes once its tokens in flight
		// are done; a request that still picks it up is retried on the new
		// one (Timestamp) or fails over (HTTP clients).
		if err := old.Close(ctx); err != nil {
			b.a.log.Error("built-in TSA: the old key's last interval summary is not recorded yet", "err", err)
			b.retired = append(b.retired, old)
		}
		b.a.log.Info("built-in TSA now signs with a new certificate", "subject", s.Certificate().Subject.String(),
			"serial", s.Certificate().SerialNumber.Text(16), "not_after", s.Certificate().NotAfter)
	}
}

// load builds the TSA server once the signing service is up.
func (b *builtinTSA) load(ctx context.Context) (*tsa.Server, error) {
	sg := b.sg.Load()
	if sg == nil {
		return nil, fmt.Errorf("%w: the signing service is not up yet", errTSANotSetUp)
	}
	return b.a.loadTSA(ctx, sg)
}

// loadTSA loads (making on first run) the TSA unit and builds its server,
// whose key signs through sg.
func (a *app) loadTSA(ctx context.Context, sg *signing.Service) (*tsa.Server, error) {
	rec, err := a.store.Authority(ctx, caIssuing)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTSANotSetUp
	}
	if err != nil {
		return nil, fmt.Errorf("tsa: issuing CA: %w", err)
	}
	if rec.KeyID == "" {
		return nil, fmt.Errorf("tsa: %w: the issuing CA's key is not in this HSM", errTSANotSetUp)
	}
	issuing, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("tsa: issuing CA certificate: %w", err)
	}
	issuerKey, err := a.ks.Signer(ctx, rec.KeyID)
	if err != nil {
		return nil, fmt.Errorf("tsa: issuing CA key: %w", err)
	}
	log := a.log.With("part", "tsa")
	tc := tsaSection(a.cfg)
	policy, err := tc.PolicyOID()
	if err != nil {
		return nil, fmt.Errorf("tsa.policy: %w", err)
	}
	cc, err := ca.FromConfig(a.cfg)
	if err != nil {
		return nil, err
	}
	var auditor audit.Appender // nil, refused by LoadUnit, while there is no log
	if l := a.auditLog(); l != nil {
		auditor = l
	}
	unit, err := tsa.LoadUnit(ctx, a.ks, a.store, tsa.UnitConfig{
		Auditor:        auditor,
		Name:           tsaUnit,
		KeyType:        tc.KeyType,
		Issuer:         issuing,
		Issue:          tsa.IssuerFunc(issuing, issuerKey, tsaCertOptions(cc.BaseURL)),
		KeyUsagePeriod: tc.KeyUsagePeriod,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	cfg := tsa.ServerConfig{
		Signer:   unit.Signer,
		Cert:     unit.Cert,
		Chain:    []*x509.Certificate{issuing},
		Policy:   policy,
		Accuracy: tc.Accuracy,
		Serials:  tsa.NewSequence(a.store, tsaUnit, tc.SerialBlock),
		Signing:  sg,
		// Every token's row, before it leaves; the audit log gets one
		// summary per interval.
		Issuance:      a.store,
		AuditInterval: tc.AuditInterval,
		Logger:        log,
		Registerer:    a.reg,
	}
	// A TSA must not claim an accuracy its clock does not have: with
	// tsa.require_synced_clock tokens are refused while it is not
	// synchronised; without it (development machines without NTP) that is
	// only reported.
	clock := tsa.KernelClock(tc.Accuracy)
	if tc.RequireSyncedClock {
		cfg.ClockCheck = clock
	}
	srv, err := tsa.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := clock(); err != nil {
		log.Warn("built-in TSA clock is not synchronised within its accuracy", "accuracy", tc.Accuracy,
			"enforced", tc.RequireSyncedClock, "err", err)
	}
	log.Info("built-in TSA serving at /tsa", "subject", unit.Cert.Subject.String(), "not_after", unit.Cert.NotAfter,
		"policy", policy.String())
	return srv, nil
}

// ServeHTTP answers RFC 3161 requests, or 503 while there is no CA.
func (b *builtinTSA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	srv, ok := b.serving(w, r)
	if !ok {
		return
	}
	h := b.handler.Load()
	if h == nil || h.srv != srv {
		h = &tsaHandler{srv: srv, h: tsahttp.HandlerLimited(srv, b.a.log.With("part", "tsa"), b.a.limiter().tsa)}
		b.handler.Store(h)
	}
	h.h.ServeHTTP(w, r)
}

// tsaHandler is the HTTP handler of one TSA server.
type tsaHandler struct {
	srv *tsa.Server
	h   http.Handler
}

func (b *builtinTSA) serveCerts(w http.ResponseWriter, r *http.Request) {
	srv, ok := b.serving(w, r)
	if ok {
		tsahttp.CertificatesHandler(srv).ServeHTTP(w, r)
	}
}

func (b *builtinTSA) serving(w http.ResponseWriter, r *http.Request) (*tsa.Server, bool) {
	srv, err := b.server(r.Context())
	if err == nil {
		return srv, true
	}
	status, code, detail := http.StatusServiceUnavailable, "tsa_not_set_up", "the built-in TSA is not set up yet"
	if !errors.Is(err, errTSANotSetUp) {
		status, code, detail = http.StatusInternalServerError, "internal", "the built-in TSA cannot start"
		b.a.log.Error("built-in TSA cannot start", "err", err)
	}
	problem.Send(w, status, code, detail)
	return nil, false
}

// Timestamp issues a token in process; once more on the new server if a
// key rollover closed the one it asked.
func (b *builtinTSA) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) (*tsa.Token, error) {
	srv, err := b.server(ctx)
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w: %w", tsa.ErrUnavailable, err)
	}
	tok, err := srv.Timestamp(ctx, h, digest)
	if errors.Is(err, tsa.ErrClosed) {
		if next := b.srv.Load(); next != nil && next != srv {
			return next.Timestamp(ctx, h, digest)
		}
	}
	return tok, err
}

// tsaCertOptions points relying parties at the issuing CA's certificate
// and CRL. No OCSP URL: the CA's responder answers only for certificates in
// its own records, and the TSA certificate is not one of them until the ca
// package issues it itself.
func tsaCertOptions(base string) tsa.CertOptions {
	if base == "" {
		return tsa.CertOptions{}
	}
	return tsa.CertOptions{
		IssuingCertificateURL: []string{base + "/ca/issuing.crt"},
		CRLDistributionPoints: []string{base + "/crl/issuing.crl"},
	}
}
