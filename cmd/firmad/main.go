package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/firma-cloud/firma/config"
)

// setups are the start-up steps, run in order. Each may register gRPC
// services on a.grpc, HTTP handlers on a.mux, collectors on a.reg,
// readiness checks with a.ready and clean-up with a.onClose. Add a feature
// by writing `func (a *app) setupX(ctx context.Context) error` in its own
// file and one line here.
var setups = []step{
	{"limits", (*app).setupLimits},
	{"store", (*app).setupStore},
	{"keystore", (*app).setupKeystore},
	{"timestamps", (*app).setupStamper},
	{"audit", (*app).setupAudit},
	{"signer", (*app).setupSigner},
	// The CA before the signing service, which checks citizens'
	// certificates with it; every way to a key after it.
	{"ca", (*app).setupCA},
	{"signing", (*app).setupSigning},
	{"keys api", (*app).setupKeysAPI},
	{"tsa", (*app).setupTSA},
	{"verify", (*app).setupVerify},
	{"registry", (*app).setupRegistry},
	{"access", (*app).setupAccess},
	{"transactions", (*app).setupTransactions},
	{"archive timestamp renewal", (*app).setupRetimestamp},
	// Before web: the approval page serves the CSC consent page too.
	{"csc", (*app).setupCSC},
	{"web", (*app).setupWeb},
	{"fire", (*app).setupFire},
	{"attempt sweep", (*app).setupAttemptSweep},
	{"sandbox page", (*app).setupSandbox},
	{"openapi", (*app).setupOpenAPI},
}

// Exit codes: 2 for a bad command line or configuration, 1 for anything
// that failed while starting or serving.
const (
	exitFail   = 1
	exitConfig = 2
)

func main() {
	// The PIN leaves the environment before anything else runs; see
	// config.TakePINFromEnv for what that does and does not hide.
	os.Exit(run(os.Args[1:], config.TakePINFromEnv(), os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("firmad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("FIRMA_CONFIG"), "YAML config file (env FIRMA_CONFIG); empty means built-in defaults")
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "firmad: unexpected argument %q\n", fs.Arg(0))
		return exitConfig
	}
	cfg, err := config.Load(*cfgPath, getenv, fs)
	if err != nil {
		fmt.Fprintf(stderr, "firmad: %v\n", err)
		return exitConfig
	}
	log := cfg.Logger(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP (systemctl reload) re-reads the auditors and staff
	// (access.go); caught from here so that one sent during start-up
	// neither kills firmad nor is lost.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	a, err := newApp(ctx, cfg, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		fmt.Fprintf(stderr, "firmad: %v\n", err)
		return exitFail
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.reloadAccess(ctx, func() (*config.Config, error) { return config.Load(*cfgPath, getenv, fs) })
			}
		}
	}()
	if err := a.serve(ctx, stdout); err != nil {
		log.Error("serve failed", "err", err)
		fmt.Fprintf(stderr, "firmad: %v\n", err)
		return exitFail
	}
	return 0
}
