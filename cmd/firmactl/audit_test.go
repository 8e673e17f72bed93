package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

const auditOrigin = "firma.test/audit"

// auditKey is the checkpoint key, made in a fresh SoftHSM2 token as firmad
// makes it.
type auditKey struct {
	signer note.Signer
	vkey   string
}

func newAuditKey(t *testing.T) *auditKey {
	t.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(t)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	k, err := ks.GenerateMode(ctx, "system:audit", keystore.ECP256, keystore.ModeToken)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ks.Signer(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	ak := &auditKey{}
	if ak.signer, err = audit.NewNoteSigner(auditOrigin, s); err != nil {
		t.Fatal(err)
	}
	if ak.vkey, err = audit.NoteVerifierKey(auditOrigin, s.Public()); err != nil {
		t.Fatal(err)
	}
	return ak
}

var auditEvents = []audit.Event{audit.KeyUsed, audit.OTPSent, audit.OTPChecked, audit.TransactionStateChange}

// auditLog makes a 20-record log with checkpoints at 8 and 20 in a fresh
// database file; it returns the path and the size-20 checkpoint.
func auditLog(t *testing.T, ak *auditKey) (*sqlite.DB, string, []byte) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "firma.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := audit.Open(ctx, db, audit.Options{Origin: auditOrigin, Signer: ak.signer, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var cp *audit.Checkpoint
	for i := 0; i < 20; i++ {
		r := &audit.Record{Event: auditEvents[i%4], Outcome: audit.Success,
			Actor:   audit.Actor{Role: audit.RoleCitizen, ID: fmt.Sprintf("cit-%d", i%3)},
			Citizen: fmt.Sprintf("cit-%d", i%3), Portal: fmt.Sprintf("portal-%d", i%2),
			Time: time.Date(2026, 11, 25, 10, 0, i, 0, time.UTC)}
		if r.Event == audit.KeyUsed {
			r.KeyID = fmt.Sprintf("key-%d", i%3)
			r.Documents = []audit.Document{{Hash: "sha-256", Digest: strings.Repeat(fmt.Sprintf("%02x", i), 32)}}
		}
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i == 7 || i == 19 {
			if cp, err = l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db, path, cp.Note
}

func tamperSQL(t *testing.T, db *sqlite.DB, stmts ...string) {
	t.Helper()
	for _, tr := range []string{"audit_records_no_update", "audit_records_no_delete", "audit_hashes_no_update",
		"audit_hashes_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
		stmts = append([]string{"DROP TRIGGER " + tr}, stmts...)
	}
	for _, s := range stmts {
		if _, err := db.SQL().Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func firmactl(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// Tampering with the store directly is caught by `firmactl audit verify`,
// which names the first bad record; an untouched export verifies.
func TestAuditVerifyCommand(t *testing.T) {
	ak := newAuditKey(t)
	tests := []struct {
		name    string
		sql     []string
		trusted bool
		exit    int
		want    string
	}{
		{name: "untouched", exit: 0, want: "audit export verified: 20 records"},
		{name: "change", sql: []string{`UPDATE audit_records SET data = replace(data, '"portal":"portal-1"', '"portal":"portal-0"') WHERE idx = 13`},
			exit: 1, want: "first bad record is 13 (otp.sent): changed"},
		{name: "delete", sql: []string{"DELETE FROM audit_records WHERE idx = 4"},
			exit: 1, want: "first bad record is 4: missing"},
		{name: "reorder", sql: []string{"UPDATE audit_records SET idx = -1 WHERE idx = 10", "UPDATE audit_records SET idx = 10 WHERE idx = 11",
			"UPDATE audit_records SET idx = 11 WHERE idx = -1"},
			exit: 1, want: "first bad record is 10 (transaction.state_changed): carries sequence number 11"},
		{name: "insert", sql: []string{"UPDATE audit_records SET idx = idx + 100 WHERE idx >= 2", "UPDATE audit_records SET idx = idx - 99 WHERE idx >= 100",
			`INSERT INTO audit_records (idx, time, event, outcome, actor_role, actor_id, data)
			 SELECT 2, time, 'key.destroyed', outcome, actor_role, actor_id, json_set(data, '$.event', 'key.destroyed', '$.seq', 2, '$.key_id', 'key-9')
			 FROM audit_records WHERE idx = 3`},
			exit: 1, want: "first bad record is 2 (key.destroyed)"},
		{name: "truncate", sql: []string{"DELETE FROM audit_records WHERE idx >= 15"},
			exit: 1, want: "first bad record is 15: missing: the log is truncated"},
		{name: "truncate with checkpoints, trusted copy", trusted: true, sql: []string{"DELETE FROM audit_records WHERE idx >= 8",
			fmt.Sprintf("DELETE FROM audit_hashes WHERE idx >= %d", tlog.StoredHashCount(8)), "DELETE FROM audit_checkpoints WHERE size > 8"},
			exit: 1, want: "first bad record is 8: missing: the log is truncated: it ends after 8 records but a trusted checkpoint covers 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path, cp := auditLog(t, ak)
			tamperSQL(t, db, tt.sql...)
			dir := t.TempDir()
			exp := filepath.Join(dir, "audit.jsonl")
			if code, _, stderr := firmactl(t, nil, "audit", "export", "--db", path, "--out", exp); code != 0 {
				t.Fatalf("audit export: %d %s", code, stderr)
			}
			args := []string{"audit", "verify", "--key", ak.vkey, exp}
			if tt.trusted {
				f := filepath.Join(dir, "trusted.note")
				if err := os.WriteFile(f, cp, 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--trusted", f)
			}
			code, stdout, stderr := firmactl(t, nil, args...)
			if code != tt.exit || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.exit, tt.want, stdout, stderr)
			}
			t.Logf("%s%s", stdout, stderr)
			// The same verdict reading the database directly.
			dbArgs := append([]string{"audit", "verify", "--db", path}, args[2:len(args)-1]...)
			if tt.trusted {
				dbArgs = append([]string{"audit", "verify", "--db", path, "--key", ak.vkey}, args[len(args)-2:]...)
			}
			code, stdout, stderr = firmactl(t, nil, dbArgs...)
			if code != tt.exit || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("--db: exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.exit, tt.want, stdout, stderr)
			}
		})
	}
}

// The same check through the built binary, as an auditor runs it.
func TestAuditVerifyBinary(t *testing.T) {
	ak := newAuditKey(t)
	db, path, _ := auditLog(t, ak)
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmactl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exp := filepath.Join(dir, "audit.jsonl")
	if out, err := exec.Command(bin, "audit", "export", "--db", path, "--out", exp).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "audit.vkey")
	if err := os.WriteFile(keyFile, []byte("# firma audit checkpoint key\n"+ak.vkey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "audit", "verify", "--key-file", keyFile, exp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "audit export verified: 20 records") {
		t.Fatalf("untouched export: %v\n%s", err, out)
	}
	tamperSQL(t, db, `UPDATE audit_records SET data = replace(data, '"outcome":"success"', '"outcome":"denied"') WHERE idx = 16`)
	if out, err := exec.Command(bin, "audit", "export", "--db", path, "--out", exp).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "audit", "verify", "--key-file", keyFile, exp).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "first bad record is 16 (key.used): changed") {
		t.Fatalf("tampered export: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	// Bad invocations exit 2 and say why.
	out, err = exec.Command(bin, "audit", "verify", exp).CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--key") {
		t.Fatalf("verify without key: %v\n%s", err, out)
	}
}

// query, report, checkpoint and export against a running AuditService.
func TestAuditRemoteCommands(t *testing.T) {
	ak := newAuditKey(t)
	db, path, _ := auditLog(t, ak)
	ctx := context.Background()
	l, err := audit.Open(ctx, db, audit.Options{Origin: auditOrigin, Signer: ak.signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	const token = "auditor-token-5d1c"
	log := slog.New(slog.DiscardHandler)
	opts, err := api.ServerOptions(config.Auth{}, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	auditors, err := api.NewAuditors([]audit.Credential{{Name: "eva", TokenSHA256: api.TokenSHA256(token)}})
	if err != nil {
		t.Fatal(err)
	}
	firmav1.RegisterAuditServiceServer(gs, api.NewAuditService(l, ak.vkey, auditors, nil, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	env := map[string]string{"FIRMA_TOKEN": token, "FIRMA_ADDR": lis.Addr().String(), "FIRMA_STATE": t.TempDir()}
	dir := t.TempDir()

	code, out, errs := firmactl(t, env, "audit", "query", "--citizen", "cit-1", "--event", "key.used", "--limit", "1")
	if code != 0 || strings.Count(out, "key.used") != 1 || !strings.Contains(out, "# more: --page") {
		t.Fatalf("query: %d\n%s%s", code, out, errs)
	}
	code, out, errs = firmactl(t, env, "audit", "report", "--portal", "portal-0")
	if code != 0 || !strings.Contains(out, "TOTAL") || strings.Contains(out, "portal-1") {
		t.Fatalf("report: %d\n%s%s", code, out, errs)
	}
	// The same report read from the database file.
	_, local, _ := firmactl(t, nil, "audit", "report", "--portal", "portal-0", "--db", path)
	if local != out {
		t.Errorf("report over gRPC and from --db differ:\n%s\n%s", out, local)
	}
	trusted := filepath.Join(dir, "kept.note")
	code, out, errs = firmactl(t, env, "audit", "checkpoint", "--out", trusted)
	if code != 0 || !strings.Contains(out, "verifier key: "+ak.vkey) {
		t.Fatalf("checkpoint: %d\n%s%s", code, out, errs)
	}
	exp := filepath.Join(dir, "audit.jsonl")
	if code, out, errs = firmactl(t, env, "audit", "export", "--out", exp); code != 0 {
		t.Fatalf("export: %d\n%s%s", code, out, errs)
	}
	code, out, errs = firmactl(t, nil, "audit", "verify", "--key", ak.vkey, "--trusted", trusted, exp)
	if code != 0 || !strings.Contains(out, "1 trusted") {
		t.Fatalf("verify remote export: %d\n%s%s", code, out, errs)
	}
	code, _, errs = firmactl(t, env, "audit", "query", "--from", "yesterday")
	if code != 2 || !strings.Contains(errs, "--from") {
		t.Fatalf("bad --from: %d %s", code, errs)
	}
}

// The built-in TSA's interval summaries are checked against its issuance
// log with --db (and --issuance-db for an export): a changed or deleted
// row fails verification, naming the interval's summary.
func TestAuditVerifyTSASummaries(t *testing.T) {
	ak := newAuditKey(t)
	tests := []struct {
		name string
		sql  []string
		open bool // a crash cut the interval short: no summary
		exit int
		want string
	}{
		{name: "untouched", exit: 0, want: "1 TSA interval summaries, 4 tokens: each matches the issuance log"},
		{name: "cut short", open: true, exit: 0, want: "a TSA audit interval with no summary: the issuance log holds 4 tokens issued under it"},
		{name: "row changed", sql: []string{"UPDATE tsa_issuance SET token_hash = x'00' WHERE serial = 3"},
			exit: 1, want: "first bad record is 21 (key.used): TSA interval iv-1: the issuance log's rows no longer hash to the summary's root"},
		{name: "row deleted", sql: []string{"DELETE FROM tsa_issuance WHERE serial = 2"},
			exit: 1, want: "first bad record is 21 (key.used): TSA interval iv-1: the issuance log holds 3 tokens for it, the summary says 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db, path, _ := auditLog(t, ak)
			l, err := audit.Open(ctx, db, audit.Options{Origin: auditOrigin, Signer: ak.signer, Node: "n1"})
			if err != nil {
				t.Fatal(err)
			}
			tsa := audit.Actor{Role: audit.RoleSystem, ID: "tsa"}
			if err := l.Append(ctx, &audit.Record{Event: audit.KeyActivated, Outcome: audit.Success, Actor: tsa, KeyID: "tsa-key",
				Details: map[string]string{audit.DetailActivation: "iv-1", "signing_purpose": "tsa"}}); err != nil {
				t.Fatal(err)
			}
			var rows []*store.TSAIssuance
			for s := int64(1); s <= 4; s++ {
				r := &store.TSAIssuance{Serial: s, Interval: "iv-1", KeyID: "tsa-key", IssuedAt: time.Unix(1790000000+s, 0),
					TokenHash: bytes.Repeat([]byte{byte(s)}, 32), ImprintHash: "sha-256", Policy: "0.4.0.2023.1.1"}
				if err := db.AddTSAIssuance(ctx, r); err != nil {
					t.Fatal(err)
				}
				rows = append(rows, r)
			}
			d := audit.SummariseIssuance(rows).Details()
			d[audit.DetailActivation] = "iv-1"
			if !tt.open {
				if err := l.Append(ctx, &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success, Actor: tsa, KeyID: "tsa-key", Details: d}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			l.Close()
			tamperSQL(t, db, tt.sql...)
			code, stdout, stderr := firmactl(t, nil, "audit", "verify", "--db", path, "--key", ak.vkey)
			if code != tt.exit || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("--db: exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.exit, tt.want, stdout, stderr)
			}
			// An export, against the issuance log, gives the same verdict;
			// without it the summaries are only counted.
			exp := filepath.Join(t.TempDir(), "audit.jsonl")
			if code, _, stderr := firmactl(t, nil, "audit", "export", "--db", path, "--out", exp); code != 0 {
				t.Fatalf("audit export: %d %s", code, stderr)
			}
			code, stdout, stderr = firmactl(t, nil, "audit", "verify", "--key", ak.vkey, "--issuance-db", path, exp)
			if code != tt.exit || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("--issuance-db: exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.exit, tt.want, stdout, stderr)
			}
			code, stdout, _ = firmactl(t, nil, "audit", "verify", "--key", ak.vkey, exp)
			if !tt.open && (code != 0 || !strings.Contains(stdout, "1 TSA interval summaries, 4 tokens: not checked against the issuance log")) {
				t.Fatalf("export alone: exit %d\n%s", code, stdout)
			}
		})
	}
	if code, _, stderr := firmactl(t, nil, "audit", "verify", "--key", ak.vkey, "--db", "x.db", "--issuance-db", "y.db"); code != 2 {
		t.Fatalf("--db with --issuance-db: exit %d, want 2: %s", code, stderr)
	}
}
