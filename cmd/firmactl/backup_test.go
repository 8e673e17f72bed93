package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store/backend"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
	"github.com/firma-cloud/firma/store/sqlite"
)

// A backup of a stopped state: the audit records 'ca init' left go into
// the snapshot, every file is in MANIFEST, and the restored database has
// the same log. (cmd/firmad's TestOperations backs up a running firmad and
// signs again after the restore.) Cost: one CA set-up on SoftHSM2.
func TestBackupStoppedState(t *testing.T) {
	state, _ := caState(t)
	mustRun(t, nil, "ca", "init", "--state", state)
	out := filepath.Join(t.TempDir(), "backup")
	if got := mustRun(t, nil, "backup", "--state", state, "--out", out); !strings.Contains(got, "online snapshot") || strings.Contains(got, "firmad is running") {
		t.Fatalf("backup:\n%s", got)
	}
	if code, _, errs := firmactl(t, nil, "backup", "--state", state, "--out", out); code != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("backup over an existing folder: exit %d %s", code, errs)
	}
	if code, _, errs := firmactl(t, nil, "backup", "--state", state, "--out", filepath.Join(state, "b")); code != 2 || !strings.Contains(errs, "inside the state") {
		t.Errorf("backup into the state: exit %d %s", code, errs)
	}
	restored := filepath.Join(t.TempDir(), "var")
	mustRun(t, nil, "restore", "--from", out, "--state", restored)
	for _, f := range []string{"firmad.yaml", "hsm.pin", "audit-pseudonym.key", "ca/root.pem"} {
		a, errA := os.ReadFile(filepath.Join(state, f))
		b, errB := os.ReadFile(filepath.Join(restored, f))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Errorf("%s: differs after restore (%v, %v)", f, errA, errB)
		}
	}
	ctx := context.Background()
	size := func(path string) int64 {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.JournalAudit(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := db.AuditSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	orig, rest := size(filepath.Join(state, "firma.db")), size(filepath.Join(restored, "firma.db"))
	if orig == 0 || orig != rest {
		t.Errorf("audit log: %d records, %d after restore", orig, rest)
	}
}

// 'ca init' on a state whose store comes from the environment (the
// PostgreSQL of docs/scale.md) makes the checkpoint key in that store and
// writes its verifier key, the one firmad on that store signs with.
func TestCAInitVerifierKeyPostgres(t *testing.T) {
	state, cfg := caState(t)
	dsn := pgtest.New(t)
	env := map[string]string{"FIRMA_STORE_DRIVER": "postgres", "FIRMA_STORE_DSN": dsn}
	mustRun(t, env, "ca", "init", "--state", state)
	b, err := os.ReadFile(filepath.Join(state, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := backend.Open(ctx, "postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ks, err := keystore.Open(ctx, keystore.Config{Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel, PIN: cfg.HSM.PIN.Reveal(), Sessions: 1}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	keys, err := ks.Keys(ctx, auditKeyOwner, "", 10)
	if err != nil || len(keys) != 1 {
		t.Fatalf("checkpoint keys in PostgreSQL: %d, %v", len(keys), err)
	}
	s, err := ks.Signer(ctx, keys[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := audit.NoteVerifierKey(audit.DefaultConfig().Origin, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("verifier.key %q, the PostgreSQL store's key %q", got, want)
	}
}
