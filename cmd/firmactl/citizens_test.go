package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store/sqlite"
)

// citizensCmd runs the command in-process and returns its exit code, stdout
// and stderr.
func citizensCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoSeed(t *testing.T) {
	state := t.TempDir()
	// The local commands point SOFTHSM2_CONF at STATE; put it back for the
	// tests after this one, whose tokens live elsewhere.
	t.Setenv("SOFTHSM2_CONF", os.Getenv("SOFTHSM2_CONF"))
	if code, out, errOut := citizensCmd(t, nil, "init", "--state", state); code != 0 {
		t.Fatalf("init: %d\n%s\n%s", code, out, errOut)
	}
	// init sets up the CA in recent versions; make sure it is there.
	if code, out, errOut := citizensCmd(t, nil, "ca", "init", "--state", state); code != 0 {
		t.Fatalf("ca init: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := citizensCmd(t, nil, "demo", "seed", "--state", state)
	if code != 0 {
		t.Fatalf("demo seed: %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"10000001S", "10000002Q", "10000003V", "10000004H", "10000005L", demoPassword, "(valid)", "(revoked)"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo seed output lacks %q:\n%s", want, out)
		}
	}
	// Certificates by their crt- IDs, as every other command names them.
	if !regexp.MustCompile(`(?m)^10000001S .* crt-\S+ \(valid\)`).MatchString(out) {
		t.Errorf("demo seed does not name 10000001S's certificate by its crt- ID:\n%s", out)
	}

	cfg, err := config.Load(filepath.Join(state, "firmad.yaml"), func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tt := range []struct{ id, level, status string }{
		{"10000001S", "advanced", "active"},
		{"10000002Q", "advanced", "active"},
		{"10000003V", "basic", "active"},
		{"10000004H", "advanced", "locked"},
		{"10000005L", "advanced", "active"},
	} {
		c, err := db.Citizen(ctx, tt.id)
		if err != nil || c.Level != tt.level || c.Status != tt.status {
			t.Errorf("%s: %+v, %v; want %s %s", tt.id, c, err, tt.level, tt.status)
		}
	}
	// The printed password works for an unlocked citizen and not for the
	// locked one.
	outbox, _ := sms.NewOutbox(db, sms.OutboxOptions{})
	reg, err := registry.New(db, registry.Options{SMS: outbox})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, "10000002Q", demoPassword); err != nil {
		t.Errorf("demo password of 10000002Q: %v", err)
	}
	if _, err := reg.Authenticate(ctx, "10000004H", demoPassword); err == nil {
		t.Error("locked citizen 10000004H logged in")
	}

	// Seeding again changes nothing.
	code, again, errOut := citizensCmd(t, nil, "demo", "seed", "--state", state)
	if code != 0 || again != out {
		t.Fatalf("second seed: %d\n%s\n---\n%s\n%s", code, again, out, errOut)
	}
}

const testOperatorToken = "firmactl-test-operator"

// citizensServer serves RegistryService on a loopback port, as firmad does.
func citizensServer(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(db, registry.Options{SMS: outbox, Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	auth := config.Auth{Operators: []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(testOperatorToken)}}}
	ops, err := api.NewAuth(auth.Operators)
	if err != nil {
		t.Fatal(err)
	}
	staff, err := api.NewStaffAuth(ops, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := api.ServerOptions(auth, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	api.RegisterRegistry(gs, api.NewRegistryService(reg, staff, outbox, slog.New(slog.DiscardHandler)))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func TestCitizensCommands(t *testing.T) {
	addr := citizensServer(t)
	env := map[string]string{"FIRMA_TOKEN": testOperatorToken, "FIRMA_ADDR": addr}

	// 10,000 rows, some bad.
	var csv bytes.Buffer
	csv.WriteString("id,given_name,surnames,mobile,email,method,fiscal_address\n")
	bad := 0
	for i := 0; i < 10000; i++ {
		n := 40000000 + i
		id := fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
		email := fmt.Sprintf("c%d@example.es", i)
		if i%500 == 3 {
			email = "no-at-sign"
			bad++
		}
		fmt.Fprintf(&csv, "%s,Nombre,Apellido Prueba,6%08d,%s,%s,\"Calle %d, Madrid\"\n", id, i, email,
			[]string{"in_person", "video_call", "invitation_letter"}[i%3], i)
	}
	file := filepath.Join(t.TempDir(), "citizens.csv")
	if err := os.WriteFile(file, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := citizensCmd(t, env, "citizens", "import", file)
	if code != 0 {
		t.Fatalf("import: %d\n%s\n%s", code, out, errOut)
	}
	if want := fmt.Sprintf("10000 rows: %d citizens registered, 0 already registered, %d bad rows skipped", 10000-bad, bad); !strings.Contains(out, want) {
		t.Fatalf("import summary: want %q in\n%s", want, out)
	}
	if !strings.Contains(out, "line 5: skipped: email:") {
		t.Fatalf("bad row 5 not reported:\n%s", out)
	}
	if !strings.Contains(errOut, "100%") || !strings.Contains(errOut, "importing") {
		t.Fatalf("no progress bar on stderr:\n%q", errOut)
	}

	for _, tt := range []struct {
		args []string
		code int
		out  []string // substrings of stdout, or of stderr when code != 0
	}{
		{[]string{"citizens", "get", "40000000x"}, 0, []string{"40000000X", "advanced", "in_person"}},
		{[]string{"citizens", "get", "40000000A"}, 1, []string{"check letter", "InvalidArgument"}},
		{[]string{"citizens", "list", "--level", "basic", "--page-size", "1000"}, 0, []string{"40000001B", "video_call"}},
		{[]string{"citizens", "list", "--level", "gold"}, 2, []string{"want basic or advanced"}},
		{[]string{"citizens", "register", "--id", "12345678Z", "--given-name", "José", "--surnames", "Núñez", "--mobile", "612345678", "--email", "j@example.es"},
			0, []string{"activation code", "advanced"}},
		{[]string{"citizens", "upgrade", "40000001B"}, 0, []string{"upgraded to the advanced level"}},
		{[]string{"citizens", "downgrade", "40000001B", "--reason", "test"}, 0, []string{"basic"}},
		{[]string{"citizens", "remove", "40000001B"}, 2, []string{"--reason"}},
		{[]string{"citizens", "remove", "40000001B", "--reason", "moved abroad"}, 0, []string{"removed"}},
		{[]string{"sms", "outbox"}, 0, []string{"SENT"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := citizensCmd(t, env, tt.args...)
			text := out
			if tt.code != 0 {
				text = errOut
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.out {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
		})
	}

	// The PDF is written where asked.
	pdf := filepath.Join(t.TempDir(), "c.pdf")
	if code, out, errOut := citizensCmd(t, env, "citizens", "activation", "12345678Z", "--pdf", pdf); code != 0 {
		t.Fatalf("activation: %d %s %s", code, out, errOut)
	}
	if b, err := os.ReadFile(pdf); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("pdf: %v", err)
	}
}
