package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store/sqlite"
)

// TestKeyCallsAudited signs through a real firmad with firmactl: the
// key's generation and use are in the audit log before firmactl has the
// signature, and while the audit store refuses records (a trigger standing
// in for a full or broken disk) signatures are refused and never written.
func TestKeyCallsAudited(t *testing.T) {
	s := initState(t)
	d := s.start(t)
	addr := "--addr=" + d.grpc
	m := keyIDRe.FindStringSubmatch(s.firmactl(t, 0, "keys", "generate", "--user", "12345678Z", addr))
	if m == nil {
		t.Fatal("keys generate printed no key id")
	}
	id := m[1]
	sum := sha256.Sum256([]byte("Resolución 2026/0042\n"))
	sig := filepath.Join(s.dir, "ok.sig")
	s.firmactl(t, 0, "sign", "--key", id, "--digest", hex.EncodeToString(sum[:]), "--out", sig, addr)
	if _, err := os.Stat(sig); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(s.dir, "var", "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
		BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	// firmad commits records to its journal (audit.journal), which the
	// trigger does not reach: a signature whose record is already there
	// may still be returned, but once the journal's next move into the
	// tables fails (within 20 ms), signing is refused until one succeeds.
	var (
		out      string
		returned = 1
	)
	refused := filepath.Join(s.dir, "refused.sig")
	for try := 0; ; try++ {
		if try == 20 {
			t.Fatalf("signing still works %d calls after the audit store broke:\n%s", try, out)
		}
		out = s.firmactl(t, -1, "sign", "--key", id, "--digest", hex.EncodeToString(sum[:]), "--out", refused, addr)
		if _, err := os.Stat(refused); err != nil {
			break
		}
		returned++
		os.Remove(refused)
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out, "Unavailable") || !strings.Contains(out, "audit") {
		t.Errorf("sign with the audit store down: want Unavailable:\n%s", out)
	}
	t.Logf("signatures returned after the store broke, their records in the journal: %d", returned-1)
	if code, body := get(t, "http://"+d.http+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"audit":"fail"`) {
		t.Errorf("/readyz with the audit store down: %d %s", code, body)
	}
	// Key changes are refused as well, before they take effect: their
	// intent cannot be recorded (audit.ChangeKey).
	out = s.firmactl(t, -1, "keys", "generate", "--user", "87654321X", addr)
	if keyIDRe.MatchString(out) || !strings.Contains(out, "Unavailable") || !strings.Contains(out, "audit") {
		t.Errorf("keys generate with the audit store down: want Unavailable naming the audit log:\n%s", out)
	}
	out = s.firmactl(t, -1, "keys", "destroy", id, addr)
	if strings.Contains(out, "destroyed at") || !strings.Contains(out, "Unavailable") || !strings.Contains(out, "audit") {
		t.Errorf("keys destroy with the audit store down: want Unavailable naming the audit log:\n%s", out)
	}
	if _, err := db.SQL().ExecContext(ctx, `DROP TRIGGER refuse_audit`); err != nil {
		t.Fatal(err)
	}
	// The journal's next move empties it, and the service is ready again.
	for try := 0; ; try++ {
		code, body := get(t, "http://"+d.http+"/readyz")
		if code == http.StatusOK {
			break
		}
		if try == 100 {
			t.Fatalf("/readyz once the audit store is back: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The key the refused destroy named still signs; the refused
	// generate made no key.
	again := filepath.Join(s.dir, "again.sig")
	s.firmactl(t, 0, "sign", "--key", id, "--digest", hex.EncodeToString(sum[:]), "--out", again, addr)
	returned++
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}

	if keys, err := db.Keys(ctx, "87654321X", "", 10); err != nil || len(keys) != 0 {
		t.Errorf("keys of a refused generate: %d, %v", len(keys), err)
	}
	n, err := db.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.AuditRecords(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range recs {
		if r.KeyID != id {
			continue
		}
		count[r.Event+"/"+r.Outcome]++
		if r.Event == string(audit.KeyUsed) && r.Documents != 1 {
			t.Errorf("key.used record with %d documents, want 1", r.Documents)
		}
	}
	if count[string(audit.KeyGenerated)+"/"+string(audit.Success)] != 1 || count[string(audit.KeyUsed)+"/"+string(audit.Success)] != returned {
		t.Errorf("records of key %s: %v; want one key.generated and %d successful key.used, one a signature returned", id, count, returned)
	}
}
