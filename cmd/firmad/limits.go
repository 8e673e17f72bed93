package main

import (
	"context"
	"os"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/limit"
)

// limits are the bounds on what anonymous and cheap requests may make
// firmad spend (the limits: section), made once by setupLimits and
// shared by every surface that serves such requests.
type limits struct {
	cfg       limit.Config
	proxies   *limit.Proxies // server.trusted_proxies: who finds each client
	verify    v1http.VerifyLimits
	passwords *limit.Gate
	tsa       *limit.Clients
	ocsp      *limit.Clients
	login     *limit.Clients
	sms       *limit.Clients
}

func limitsSection(cfg *config.Config) limit.Config {
	if c := config.SectionOf[limit.Config](cfg, limit.SectionName); c != nil {
		return *c
	}
	return limit.DefaultConfig()
}

// setupLimits makes the limiters and sets the runtime's soft memory
// limit. It runs first: every surface after it reads a.lim.
func (a *app) setupLimits(context.Context) error {
	// The limiters may exist already: the gRPC server is made with them.
	c := a.limiter().cfg
	if a.reg != nil {
		if err := a.reg.Register(limit.Refusals); err != nil {
			return err
		}
	}
	// GOMEMLIMIT, the runtime's own setting, wins over the file.
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && c.MemoryLimitMiB > 0 {
		debug.SetMemoryLimit(int64(c.MemoryLimitMiB) << 20)
	}
	a.log.Info("limits", "memory_limit_mib", c.MemoryLimitMiB, "verify_bytes_mib", c.VerifyBytesMiB,
		"password_checks", c.PasswordChecks, "queue_wait", c.QueueWait)
	return nil
}

func newLimits(c limit.Config) *limits {
	bytes, inFlight := limit.NewGate(int64(c.VerifyBytesMiB)<<20, c.QueueWait), limit.NewConcurrent(c.VerifyPerClient)
	bytes.Name, inFlight.Name = "verify_bytes", "verify_per_client"
	passwords := limit.NewGate(int64(c.PasswordChecks), c.QueueWait)
	passwords.Name = "password_checks"
	return &limits{
		cfg:       c,
		verify:    v1http.VerifyLimits{Bytes: bytes, PerClient: inFlight, Rate: c.Rate("verify_rate", c.VerifyPerMinute, c.VerifyBurst)},
		passwords: passwords,
		tsa:       c.Rate("tsa_rate", c.TSAPerMinute, c.TSABurst),
		ocsp:      c.Rate("ocsp_rate", c.OCSPPerMinute, c.OCSPBurst),
		login:     c.Rate("login_rate", c.LoginPerMinute, c.LoginBurst),
		sms:       c.Rate("sms_rate", c.SMSPerMinute, c.SMSBurst),
	}
}

// limiter returns the limits; when setupLimits did not run (tests that
// run single steps), the configured ones, without touching the process's
// memory limit or metrics.
func (a *app) limiter() *limits {
	if a.lim == nil {
		a.lim = newLimits(limitsSection(a.cfg))
		if sc := config.SectionOf[limit.ServerConfig](a.cfg, limit.ServerSectionName); sc != nil {
			// Checked by config validation already.
			a.lim.proxies, _ = limit.ParseProxies(sc.TrustedProxies)
		}
	}
	return a.lim
}

// anonymousGRPC are the gRPC server options bounding the anonymous methods
// (VerifyService) with the limiters of POST /v1/verify. Each call takes
// limits.verify_grpc_message_mib of the verify bytes, and no more may be
// sent.
func (l *limits) anonymousGRPC(serverMax int) []grpc.ServerOption {
	return (&api.AnonymousLimits{
		Bytes: l.verify.Bytes, PerClient: l.verify.PerClient, Rate: l.verify.Rate,
		ClientKey: func(ctx context.Context) string {
			md, _ := metadata.FromIncomingContext(ctx)
			return l.proxies.Client(api.PeerIP(ctx), md.Get("x-forwarded-for"))
		},
		MaxMessageBytes: min(api.MaxVerifyBytes, serverMax, l.cfg.VerifyBytesMiB<<20, l.cfg.VerifyGRPCMessageMiB<<20),
	}).ServerOptions()
}
