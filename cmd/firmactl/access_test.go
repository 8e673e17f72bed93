package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/registry"
)

// accessState is a state folder with a firmad.yaml as 'firmactl init'
// writes it (no HSM needed: the commands only edit the file).
func accessState(t *testing.T) string {
	t.Helper()
	state := t.TempDir()
	cfg := config.Default()
	cfg.HSM.Module, cfg.HSM.TokenLabel = "/nonexistent/libsofthsm2.so", "firma"
	cfg.HSM.PINFile = filepath.Join(state, "hsm.pin")
	cfg.Store.Path = filepath.Join(state, "firma.db")
	cfg.Auth.Operators = []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256("operator-token-access-test")}}
	if err := writeConfig(filepath.Join(state, "firmad.yaml"), cfg); err != nil {
		t.Fatal(err)
	}
	return state
}

// loadAccess reads the auditors and staff back as firmad reads them.
func loadAccess(t *testing.T, state string) ([]audit.Credential, []registry.StaffToken) {
	t.Helper()
	cfg := config.Default()
	if err := cfg.LoadFilePartial(filepath.Join(state, "firmad.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var auditors []audit.Credential
	if c := config.SectionOf[audit.Config](cfg, audit.SectionName); c != nil {
		auditors = c.Auditors
	}
	var staff []registry.StaffToken
	if c := config.SectionOf[registry.Config](cfg, registry.SectionName); c != nil {
		staff = c.Staff
	}
	return auditors, staff
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// auditors and staff add, list and remove edit firmad.yaml as firmad reads
// it: the token goes only to the --out file (0600), the file keeps its
// comments and mode, and every refusal leaves the file and --out as they
// were.
func TestAccessCommands(t *testing.T) {
	state := accessState(t)
	cfgPath := filepath.Join(state, "firmad.yaml")
	st := "--state=" + state
	evaTok := filepath.Join(state, "eva.token")
	out := mustRun(t, nil, "auditors", "add", "eva", "--out", evaTok, st)
	if !strings.Contains(out, "systemctl reload firmad") {
		t.Errorf("add does not say how to apply the change:\n%s", out)
	}
	tok := readToken(t, evaTok)
	if strings.Contains(out, tok) {
		t.Fatal("the token was printed")
	}
	cert := strings.Repeat("ab", 32)
	mustRun(t, nil, "auditors", "add", "oscar", "--cert-sha256", cert, st)
	ruthTok := filepath.Join(state, "ruth.token")
	mustRun(t, nil, "staff", "add", "ruth", "--role", "registrar", "--out", ruthTok, st)
	mustRun(t, nil, "staff", "add", "vic", "--role", "video_agent", "--out", filepath.Join(state, "vic.token"), st)

	auditors, staff := loadAccess(t, state)
	if len(auditors) != 2 || auditors[0].Name != "eva" || auditors[0].TokenSHA256 != api.TokenSHA256(tok) ||
		auditors[1].Name != "oscar" || auditors[1].CertSHA256 != cert || auditors[1].TokenSHA256 != "" {
		t.Fatalf("auditors %+v", auditors)
	}
	if len(staff) != 2 || staff[0].Name != "ruth" || staff[0].Role != "registrar" ||
		staff[0].TokenSHA256 != api.TokenSHA256(readToken(t, ruthTok)) || staff[1].Role != "video_agent" {
		t.Fatalf("staff %+v", staff)
	}
	b, _ := os.ReadFile(cfgPath)
	if !strings.HasPrefix(string(b), "# firmad configuration written by 'firmactl init'") {
		t.Errorf("the file's comment is gone:\n%.200s", b)
	}
	if fi, _ := os.Stat(cfgPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("firmad.yaml mode %v", fi.Mode().Perm())
	}
	if out := mustRun(t, nil, "auditors", "list", st); !strings.Contains(out, "eva") || !strings.Contains(out, "oscar") ||
		!strings.Contains(out, "client certificate") {
		t.Errorf("auditors list:\n%s", out)
	}
	if out := mustRun(t, nil, "staff", "list", st); !strings.Contains(out, "ruth") || !strings.Contains(out, "video_agent") {
		t.Errorf("staff list:\n%s", out)
	}

	refusals := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"existing out file", []string{"auditors", "add", "ana", "--out", evaTok}, 1, "not overwritten"},
		{"duplicate name", []string{"auditors", "add", "eva", "--out", filepath.Join(state, "eva2.token")}, 1, "exists already"},
		{"no credential", []string{"auditors", "add", "ana"}, 2, "--out"},
		{"bad cert digest", []string{"auditors", "add", "ana", "--cert-sha256", "abcd"}, 1, "nothing changed"},
		{"staff without role", []string{"staff", "add", "pat", "--out", filepath.Join(state, "pat.token")}, 2, "--role"},
		{"staff as administrator", []string{"staff", "add", "pat", "--role", "administrator", "--out", filepath.Join(state, "pat.token")}, 2, "registrar or video_agent"},
		{"remove unknown", []string{"staff", "remove", "nobody"}, 1, "no staff member"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before, _ := os.ReadFile(cfgPath)
			code, out, errs := firmactl(t, nil, append(r.args, st)...)
			if code != r.code || !strings.Contains(errs, r.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, r.code, r.want, out, errs)
			}
			if after, _ := os.ReadFile(cfgPath); string(after) != string(before) {
				t.Error("a refused command changed firmad.yaml")
			}
			if readToken(t, evaTok) != tok {
				t.Error("eva's token file changed")
			}
			for _, f := range []string{"eva2.token", "pat.token"} {
				if _, err := os.Stat(filepath.Join(state, f)); err == nil {
					t.Errorf("%s left behind by a refused command", f)
				}
			}
		})
	}

	// Operators: a second one for a rotation, the first removed, and the
	// last one kept (signing is never anonymous).
	opTok := filepath.Join(state, "ops2.token")
	if out := mustRun(t, nil, "operators", "add", "ops2", "--out", opTok, st); !strings.Contains(out, "systemctl restart firmad") {
		t.Errorf("operators add does not say a restart applies it:\n%s", out)
	}
	mustRun(t, nil, "operators", "remove", "op", st)
	if out := mustRun(t, nil, "operators", "list", st); !strings.Contains(out, "ops2") || strings.Contains(out, "op ") {
		t.Errorf("operators list:\n%s", out)
	}
	if code, _, errs := firmactl(t, nil, "operators", "remove", "ops2", st); code != 1 || !strings.Contains(errs, "at least one operator") {
		t.Errorf("removing the last operator: exit %d %s", code, errs)
	}
	cfg := config.Default()
	if err := cfg.LoadFilePartial(cfgPath); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Auth.Operators) != 1 || cfg.Auth.Operators[0].TokenSHA256 != api.TokenSHA256(readToken(t, opTok)) {
		t.Errorf("operators %+v", cfg.Auth.Operators)
	}

	mustRun(t, nil, "auditors", "remove", "eva", st)
	mustRun(t, nil, "staff", "remove", "ruth", st)
	auditors, staff = loadAccess(t, state)
	if len(auditors) != 1 || auditors[0].Name != "oscar" || len(staff) != 1 || staff[0].Name != "vic" {
		t.Fatalf("after remove: auditors %+v staff %+v", auditors, staff)
	}
}

// 'audit verify --db DIR/firma.db' takes the checkpoint key from
// DIR/verifier.key (as 'firmactl init' writes it) when no --key is given;
// without the file it says where the key goes; a wrong key there fails.
func TestAuditVerifyDBDefaultKey(t *testing.T) {
	ak := newAuditKey(t)
	_, path, _ := auditLog(t, ak)
	code, out, errs := firmactl(t, nil, "audit", "verify", "--db", path)
	if code != 2 || !strings.Contains(errs, "verifier.key") {
		t.Fatalf("no key, no file: exit %d\n%s%s", code, out, errs)
	}
	vk := filepath.Join(filepath.Dir(path), "verifier.key")
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := audit.NoteVerifierKey(auditOrigin, priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vk, []byte(otherKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := firmactl(t, nil, "audit", "verify", "--db", path); code != 1 {
		t.Fatalf("another key in verifier.key: exit %d\n%s%s", code, out, errs)
	}
	if err := os.WriteFile(vk, []byte(ak.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := firmactl(t, nil, "audit", "verify", "--db", path); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("verifier.key beside the database: exit %d\n%s%s", code, out, errs)
	}
}
