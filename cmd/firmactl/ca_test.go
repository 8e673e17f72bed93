package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

// caState writes a firmad.yaml for a fresh SoftHSM2 token (made by
// softhsmtest, since one process loads the module once) and returns the
// state folder.
func caState(t *testing.T) (string, *config.Config) {
	t.Helper()
	tok := softhsmtest.New(t)
	state := t.TempDir()
	cfg := config.Default()
	cfg.HSM.Module, cfg.HSM.TokenLabel = tok.Module, tok.Label
	cfg.HSM.PINFile = filepath.Join(state, "hsm.pin")
	cfg.Store.Path = filepath.Join(state, "firma.db")
	cfg.Listen.HTTP = "127.0.0.1:17781"
	cfg.Auth.Operators = []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256("operator-token-ca-test")}}
	if err := os.WriteFile(cfg.HSM.PINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(filepath.Join(state, "firmad.yaml"), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.HSM.PIN = config.Secret(tok.PIN)
	return state, cfg
}

func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errs := firmactl(t, env, args...)
	if code != 0 {
		t.Fatalf("firmactl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func opensslOK(t *testing.T, want string, args ...string) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestCACommands(t *testing.T) {
	ctx := context.Background()
	state, cfg := caState(t)

	out := mustRun(t, nil, "ca", "init", "--state", state)
	if !strings.Contains(out, "created root, issuing, ocsp") {
		t.Fatalf("first ca init:\n%s", out)
	}
	out = mustRun(t, nil, "ca", "init", "--state", state)
	if !strings.Contains(out, "already set up; kept as is") {
		t.Fatalf("second ca init:\n%s", out)
	}
	root, issuing := filepath.Join(state, "ca", "root.pem"), filepath.Join(state, "ca", "issuing.pem")
	opensslOK(t, "issuing.pem: OK", "verify", "-CAfile", root, issuing)

	// firmad's part, in this process: store, token, registry, CA and the
	// gRPC service the remote commands call.
	db, err := sqlite.Open(ctx, cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel, PIN: cfg.HSM.PIN.Reveal()}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	settings, err := caSettings(&env{getenv: func(string) string { return "" }}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.New(settings, ks, db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(db, registry.Options{SMS: outbox, Revoker: ca.CitizenRevoker{CA: authority},
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	authority.SetCitizens(reg)
	if err := authority.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RegisterInPerson(ctx, registry.Staff{Name: "r", Role: policy.Registrar},
		registry.Person{ID: "12345678Z", GivenName: "Juan", Surnames: "Español", Mobile: "+34600000001", Email: "juan@example.es"}); err != nil {
		t.Fatal(err)
	}
	const token = "operator-token-ca-test"
	opts, err := api.ServerOptions(config.Auth{Operators: []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(token)}}},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	api.RegisterCertificates(gs, authority, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	env := map[string]string{"FIRMA_TOKEN": token, "FIRMA_ADDR": lis.Addr().String(), "FIRMA_STATE": state}

	leaf := filepath.Join(state, "citizen.pem")
	out = mustRun(t, env, "certs", "issue", "12345678Z", "--out", leaf)
	if !strings.Contains(out, "status    valid") || !strings.Contains(out, "SERIALNUMBER=IDCES-12345678Z") {
		t.Fatalf("certs issue:\n%s", out)
	}
	opensslOK(t, "citizen.pem: OK", "verify", "-CAfile", root, "-untrusted", issuing, leaf)
	if code, _, errs := firmactl(t, env, "certs", "issue", "12345678Z"); code != 1 || !strings.Contains(errs, "renew it instead") {
		t.Fatalf("second issue: %d %s", code, errs)
	}
	mustRun(t, env, "certs", "renew", "12345678Z")
	out = mustRun(t, env, "certs", "list", "--citizen", "12345678Z")
	if strings.Count(out, "12345678Z") != 2 || !strings.Contains(out, "superseded") {
		t.Fatalf("certs list:\n%s", out)
	}
	out = mustRun(t, env, "certs", "revoke", "--citizen", "12345678Z", "--reason", "privilege-withdrawn")
	if !strings.Contains(out, "1 certificate(s) of 12345678Z revoked") {
		t.Fatalf("certs revoke --citizen:\n%s", out)
	}
	out = mustRun(t, env, "certs", "list", "--status", "valid")
	if strings.Contains(out, "12345678Z") {
		t.Fatalf("a valid certificate is left:\n%s", out)
	}
	chain := filepath.Join(state, "chain.pem")
	mustRun(t, env, "ca", "chain", "--out", chain)
	opensslOK(t, "citizen.pem: OK", "verify", "-CAfile", root, "-untrusted", chain, leaf)

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"certs", "revoke"}, 2, "give one certificate ID or serial, or --citizen"},
		{[]string{"certs", "revoke", "abc", "--reason", "certificateHold"}, 2, "--reason"},
		{[]string{"certs", "list", "--status", "lost"}, 2, "--status"},
		{[]string{"certs", "show", "crt-none"}, 1, "certificate not found"},
		{[]string{"certs", "issue", "23456789D"}, 1, "citizen not registered"},
		{[]string{"ca", "import-issuing", "--state", state}, 2, "--cert is required"},
	}
	for _, tc := range tests {
		code, _, errs := firmactl(t, env, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("firmactl %s: exit %d, %q; want %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
	}
}

func TestExternalIssuingCommands(t *testing.T) {
	state, _ := caState(t)
	dir := t.TempDir()
	extKey, extCert := filepath.Join(dir, "ext.key"), filepath.Join(dir, "ext.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", extKey, "-out", extCert, "-days", "30", "-subj", "/C=ES/O=Outside/CN=Outside Root",
		"-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	csr := filepath.Join(dir, "issuing.csr")
	out := mustRun(t, nil, "ca", "issuing-csr", "--state", state, "--out", csr)
	if !strings.Contains(out, "made in the HSM") {
		t.Fatalf("issuing-csr:\n%s", out)
	}
	ext := filepath.Join(dir, "ext.cnf")
	os.WriteFile(ext, []byte("[v3]\nbasicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"), 0o600)
	issued := filepath.Join(dir, "issuing.pem")
	if out, err := exec.Command("openssl", "x509", "-req", "-in", csr, "-CA", extCert, "-CAkey", extKey, "-set_serial", "0x1234",
		"-days", "10", "-extfile", ext, "-extensions", "v3", "-out", issued).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out = mustRun(t, nil, "ca", "import-issuing", "--state", state, "--cert", issued, "--root", extCert)
	if !strings.Contains(out, "imported") {
		t.Fatalf("import-issuing:\n%s", out)
	}
	out = mustRun(t, nil, "ca", "init", "--state", state)
	if !strings.Contains(out, "kept as is") {
		t.Fatalf("ca init after import:\n%s", out)
	}
	opensslOK(t, "issuing.pem: OK", "verify", "-CAfile", filepath.Join(state, "ca", "root.pem"), filepath.Join(state, "ca", "issuing.pem"))
	if code, _, errs := firmactl(t, nil, "ca", "import-issuing", "--state", state, "--cert", issued); code != 1 || !strings.Contains(errs, "already set up") {
		t.Fatalf("second import: %d %s", code, errs)
	}
}
