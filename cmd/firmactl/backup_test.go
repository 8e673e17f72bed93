package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
