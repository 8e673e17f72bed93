package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/tsa"
	"github.com/firma-cloud/firma/web"
)

// step is one named start-up step.
type step struct {
	name string
	fn   func(*app, context.Context) error
}

// app is a running firmad: the configuration, the shared parts every
// feature uses, and what must be undone at shutdown.
type app struct {
	cfg  *config.Config
	log  *slog.Logger
	reg  *prometheus.Registry
	grpc *grpc.Server
	mux  *rest.Mux

	// Set by the setup steps (setup.go). A feature that others need adds
	// its field here.
	store store.Store
	ks    *keystore.HSM
	core  *signer.Core
	ca    *ca.Authority // citizen certificates; set by setupCA (ca.go)
	// signing is the one way to a key (setupSigning): every key use is
	// authorised and recorded there.
	signing *signing.Service
	// audit is the audit log (setupAudit); nil before it ran, and key
	// calls are refused while it is.
	audit    *audit.Log
	registry *registry.Service    // citizens (setupRegistry)
	consents web.Consents         // the CSC OAuth consent ceremony (setupCSC), nil when off
	tx       *transaction.Service // signing transactions (setupTransactions)
	stamper  tsa.Stamper          // built-in TSA or external TSAs (setupStamper)
	builtin  *builtinTSA          // the built-in TSA; nil with external TSAs
	sms      sms.Gateway          // OTPs and notices (smsGateway)
	outbox   *sms.Outbox          // the sandbox gateway, one per process (smsOutbox)
	lim      *limits              // bounds on anonymous requests (setupLimits)
	auditors *api.Auth            // audit.auditors, replaced on SIGHUP (access.go)
	staff    *api.StaffAuth       // registry.staff, replaced on SIGHUP (access.go)
	reloads  *prometheus.CounterVec

	health   *health.Server
	tls      *tls.Config // nil for loopback plaintext
	draining atomic.Bool // set at shutdown: /readyz answers 503
	rd       readiness   // cached /readyz answers (http.go)

	mu      sync.Mutex
	checks  []readyCheck
	closers []closer

	// Interceptors added by setup steps (intercept); they run after
	// authentication. Fixed once serving starts, so read without a lock.
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
}

type readyCheck struct {
	name string
	fn   func(context.Context) error
}

type closer struct {
	name string
	fn   func() error
}

// newApp builds the shared parts and runs every setup step. If a step
// fails, what earlier steps opened is closed again.
func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, reg: prometheus.NewRegistry(), mux: rest.NewMux()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var err error
	if a.tls, err = serverTLS(cfg.TLS, registrySection(cfg).TrustedCAs); err != nil {
		return nil, err
	}
	opts, err := api.ServerOptions(cfg.Auth, a.reg, log)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		// After authentication: every key generated, used or destroyed
		// through KeyService and SigningService is recorded before the
		// caller hears of it, and refused while the audit log is not open.
		grpc.ChainUnaryInterceptor(api.AuditKeyCallsFunc(a.auditLog, log.With("part", "api")), a.lateUnary),
		grpc.ChainStreamInterceptor(a.lateStream),
		// Whole documents travel in CreateBatch calls.
		grpc.MaxRecvMsgSize(cfg.Listen.GRPCMaxMessageBytes),
		// Probe idle clients so half-open connections behind NAT are freed,
		// and refuse clients that ping more often than every 10 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}))
	if a.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(a.tls)))
	}
	// First, so that an anonymous call refused for its size stops there.
	opts = append(a.limiter().anonymousGRPC(cfg.Listen.GRPCMaxMessageBytes), opts...)
	a.grpc = grpc.NewServer(opts...)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.grpc, a.health)
	a.routes()

	for _, s := range setups {
		start := time.Now()
		if err := s.fn(a, ctx); err != nil {
			a.close()
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		log.Debug("start-up step done", "step", s.name, "took", time.Since(start))
	}
	return a, nil
}

// intercept adds interceptors that run on every call after the operator
// is authenticated (e.g. the audit log's); nil leaves a kind out. Call it
// from a setup step only: the lists are fixed once serving starts.
func (a *app) intercept(u grpc.UnaryServerInterceptor, s grpc.StreamServerInterceptor) {
	if u != nil {
		a.unary = append(a.unary, u)
	}
	if s != nil {
		a.stream = append(a.stream, s)
	}
}

// lateUnary runs the interceptors setup steps added, in order. The gRPC
// server takes its interceptors when it is made, before the steps run.
func (a *app) lateUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return chainUnary(a.unary, ctx, req, info, h)
}

func chainUnary(ics []grpc.UnaryServerInterceptor, ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if len(ics) == 0 {
		return h(ctx, req)
	}
	return ics[0](ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return chainUnary(ics[1:], ctx, req, info, h)
	})
}

func (a *app) lateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return chainStream(a.stream, srv, ss, info, h)
}

func chainStream(ics []grpc.StreamServerInterceptor, srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if len(ics) == 0 {
		return h(srv, ss)
	}
	return ics[0](srv, ss, info, func(srv any, ss grpc.ServerStream) error {
		return chainStream(ics[1:], srv, ss, info, h)
	})
}

// ready adds a check that /readyz runs.
func (a *app) ready(name string, fn func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, readyCheck{name, fn})
}

// onClose adds clean-up to run at shutdown, in reverse order of adding.
func (a *app) onClose(name string, fn func() error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, closer{name, fn})
}

// close runs the clean-up in reverse order and logs what failed.
func (a *app) close() {
	a.mu.Lock()
	cs := a.closers
	a.closers = nil
	a.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].fn(); err != nil {
			a.log.Error("close failed", "part", cs[i].name, "err", err)
		}
	}
}

// serve listens on both addresses, prints them, and serves until ctx is
// done; then it stops taking calls, lets in-flight ones drain for at most
// listen.shutdown_timeout, and closes everything.
func (a *app) serve(ctx context.Context, stdout io.Writer) error {
	defer a.close()
	gl, err := net.Listen("tcp", a.cfg.Listen.GRPC)
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	hl, err := net.Listen("tcp", a.cfg.Listen.HTTP)
	if err != nil {
		gl.Close()
		return fmt.Errorf("listen http: %w", err)
	}
	// Bounded reads and idle connections: slow or abandoned clients must
	// not pin file descriptors. No write timeout: /metrics and downloads
	// of large CRLs may take a while on a loaded machine.
	hs := &http.Server{Handler: limit.ClientIP(a.limiter().proxies, a.mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, TLSConfig: a.tls,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}

	errc := make(chan error, 2)
	go func() {
		if err := a.grpc.Serve(gl); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	}()
	go func() {
		var err error
		if a.tls != nil {
			err = hs.ServeTLS(hl, "", "")
		} else {
			err = hs.Serve(hl)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	// Start-up (migrations, the audit log's check, loading the HSM and
	// the CA) leaves tens of MiB of garbage that the runtime would hand
	// back to the OS only after a later collection: an idle node stayed
	// at about twice the memory it needs. One collection now, returning
	// the freed pages, costs a few milliseconds once.
	debug.FreeOSMemory()
	a.health.Resume()
	scheme := "http"
	if a.tls != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "firmad: grpc listening on %s (tls=%t)\n", gl.Addr(), a.tls != nil)
	fmt.Fprintf(stdout, "firmad: http listening on %s://%s (/healthz /readyz /metrics)\n", scheme, hl.Addr())
	a.log.Info("firmad started", "grpc", gl.Addr().String(), "http", hl.Addr().String(), "tls", a.tls != nil,
		"token", a.cfg.HSM.TokenLabel, "key_mode", a.cfg.HSM.KeyMode)

	var serveErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "drain_timeout", a.cfg.Listen.ShutdownTimeout)
	case serveErr = <-errc:
		a.log.Error("server failed, shutting down", "err", serveErr)
	}
	a.shutdown(hs)
	// Close before saying so: closers may still write (the audit log's
	// last checkpoint, the store).
	a.close()
	if serveErr == nil {
		a.log.Info("firmad stopped")
	}
	return serveErr
}

// shutdown stops both servers: health turns NOT_SERVING, new calls are
// refused, in-flight signatures finish unless the drain timeout ends first.
func (a *app) shutdown(hs *http.Server) {
	a.draining.Store(true)
	a.health.Shutdown()
	dctx, cancel := context.WithTimeout(context.Background(), a.cfg.Listen.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		a.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-dctx.Done():
		a.log.Warn("drain timeout reached, cutting off remaining calls")
		a.grpc.Stop()
		<-done
	}
	if err := hs.Shutdown(dctx); err != nil {
		a.log.Warn("http shutdown", "err", err)
		hs.Close()
	}
}

// serverTLS builds the server TLS config, or nil for plaintext. Client
// certificates are verified when given but not required, so that
// bearer-token operators and citizens without a certificate can still
// connect. They may chain to tls.client_ca (operators, portals, staff) or
// to one of citizenCAs (registry.trusted_cas: DNIe, FNMT), for
// electronic-certificate registration. Chaining grants nothing by itself:
// operators, portals and staff are matched by their certificate's
// fingerprint, so a citizen's certificate never authenticates as one.
func serverTLS(c config.TLS, citizenCAs []string) (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: load certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"}}
	pool := x509.NewCertPool()
	files := citizenCAs
	if c.ClientCA != "" {
		files = append([]string{c.ClientCA}, citizenCAs...)
	}
	for _, f := range files {
		pemBytes, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tls: read client CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("tls: client CA %s holds no PEM certificate", f)
		}
	}
	if len(files) > 0 {
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}
