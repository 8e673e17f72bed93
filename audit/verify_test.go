package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store/testdb"
)

// tamperedLog is a 20-record log with signed checkpoints at 8 and 20.
func tamperedLog(t *testing.T) (*env, *audit.Checkpoint) {
	t.Helper()
	return tamperedLogOn(t, testdb.Default(t))
}

// tamperedLogOn is tamperedLog on the given store backend.
func tamperedLogOn(t *testing.T, b testdb.Backend) (*env, *audit.Checkpoint) {
	t.Helper()
	e := newEnvOn(t, b, audit.Options{})
	fill(t, e.log, 0, 8)
	checkpoint(t, e.log)
	fill(t, e.log, 8, 20)
	return e, checkpoint(t, e.log)
}

func eventAt(i int) audit.Event { return sample(i).Event }

func TestVerifyUntouched(t *testing.T) {
	testdb.Each(t, testVerifyUntouched)
}

func testVerifyUntouched(t *testing.T, b testdb.Backend) {
	e, cp := tamperedLogOn(t, b)
	exp := exportOf(t, e.db)
	rep, err := audit.VerifyExport(bytes.NewReader(exp), e.keys, cp.Note)
	if err != nil {
		t.Fatalf("untouched export: %v", err)
	}
	if rep.Records != 20 || rep.Size != 20 || rep.Checkpoints != 2 || rep.Trusted != 1 || rep.Origin != origin || rep.Root != cp.Root {
		t.Errorf("report = %+v, want 20 records, size 20, 2 checkpoints, 1 trusted, root %v", rep, cp.Root)
	}
	if _, err := audit.VerifyStore(context.Background(), e.db, e.keys, cp.Note); err != nil {
		t.Fatalf("untouched store: %v", err)
	}
	// The export rebuilt from leaves must give the same root as the hashes
	// the log stored (tlog.TreeHash), which is what the checkpoint signed.
	root, err := e.log.TreeHash(context.Background(), 20)
	if err != nil || root != rep.Root {
		t.Errorf("TreeHash = %v, %v; verifier rebuilt %v", root, err, rep.Root)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	leaf11 := func(e *env) string {
		// The hash an attacker who knows the scheme would store for the
		// changed record 11, so that only the signed root catches it.
		data := e.b.QueryString(t, e.db, "SELECT data FROM audit_records WHERE idx = 11")
		h := tlog.RecordHash([]byte(strings.Replace(data, `"portal":"portal-2"`, `"portal":"portal-0"`, 1)))
		return fmt.Sprintf("UPDATE audit_hashes SET hash = %s WHERE idx = %d", e.b.Blob(h[:]), tlog.StoredHashIndex(0, 11))
	}
	tests := []struct {
		name    string
		sql     func(e *env) []string
		trusted bool // pass the size-20 checkpoint as kept elsewhere
		index   int64
		event   audit.Event
		problem string
	}{
		{
			name: "change",
			sql: func(*env) []string {
				return []string{`UPDATE audit_records SET data = replace(data, '"portal":"portal-2"', '"portal":"portal-evil"') WHERE idx = 11`}
			},
			index: 11, event: eventAt(11), problem: "changed",
		},
		{
			name:  "delete",
			sql:   func(*env) []string { return []string{"DELETE FROM audit_records WHERE idx = 5"} },
			index: 5, problem: "missing",
		},
		{
			name: "reorder",
			sql: func(*env) []string {
				return []string{
					"UPDATE audit_records SET idx = -1 WHERE idx = 6",
					"UPDATE audit_records SET idx = 6 WHERE idx = 7",
					"UPDATE audit_records SET idx = 7 WHERE idx = -1",
				}
			},
			index: 6, event: eventAt(7), problem: "reordered",
		},
		{
			name: "insert",
			sql: func(*env) []string {
				return []string{
					"UPDATE audit_records SET idx = idx + 1000 WHERE idx >= 9",
					"UPDATE audit_records SET idx = idx - 999 WHERE idx >= 1000",
					`INSERT INTO audit_records (idx, time, event, outcome, actor_role, actor_id, citizen, portal, key_id, request_id, documents, data)
					 SELECT 9, time, 'key.destroyed', outcome, actor_role, actor_id, citizen, portal, key_id, request_id, 0,
					   replace(data, '"event":"transaction.state_changed"', '"event":"key.destroyed"')
					 FROM audit_records WHERE idx = 10`,
				}
			},
			index: 9, event: audit.KeyDestroyed, problem: "changed",
		},
		{
			name:  "truncate below a stored checkpoint",
			sql:   func(*env) []string { return []string{"DELETE FROM audit_records WHERE idx >= 17"} },
			index: 17, problem: "truncated",
		},
		{
			name: "truncate with its checkpoints, caught by one kept elsewhere",
			sql: func(*env) []string {
				return []string{
					"DELETE FROM audit_records WHERE idx >= 8",
					fmt.Sprintf("DELETE FROM audit_hashes WHERE idx >= %d", tlog.StoredHashCount(8)),
					"DELETE FROM audit_checkpoints WHERE size > 8",
				}
			},
			trusted: true,
			index:   8, problem: "trusted checkpoint covers 20",
		},
		{
			name: "change with its stored hash rewritten",
			sql: func(e *env) []string {
				return []string{
					`UPDATE audit_records SET data = replace(data, '"portal":"portal-2"', '"portal":"portal-0"'), portal = 'portal-0' WHERE idx = 11`,
					leaf11(e),
				}
			},
			index: 8, problem: "do not hash to the root of the signed checkpoint of size 20",
		},
		{
			name: "forged checkpoint",
			sql: func(e *env) []string {
				if e.b.Name == testdb.Postgres.Name {
					return []string{"UPDATE audit_checkpoints SET note = convert_to(replace(convert_from(note, 'UTF8'), '\n20\n', '\n21\n'), 'UTF8') WHERE size = 20"}
				}
				return []string{"UPDATE audit_checkpoints SET note = replace(note, '\n20\n', '\n21\n') WHERE size = 20"}
			},
			index: -1, problem: "signature",
		},
	}
	// On both backends: the same attacks, in each one's SQL, are caught.
	testdb.Each(t, func(t *testing.T, b testdb.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e, cp := tamperedLogOn(t, b)
				if _, err := audit.VerifyExport(bytes.NewReader(exportOf(t, e.db)), e.keys); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
				tamper(t, e, tt.sql(e)...)
				var trusted [][]byte
				if tt.trusted {
					trusted = append(trusted, cp.Note)
				}
				for _, via := range []string{"export", "store"} {
					var err error
					if via == "export" {
						_, err = audit.VerifyExport(bytes.NewReader(exportOf(t, e.db)), e.keys, trusted...)
					} else {
						_, err = audit.VerifyStore(context.Background(), e.db, e.keys, trusted...)
					}
					var te *audit.TamperError
					if !errors.As(err, &te) || !errors.Is(err, audit.ErrTampered) {
						t.Fatalf("%s: err = %v, want a TamperError", via, err)
					}
					if te.Index != tt.index || te.Event != tt.event || !strings.Contains(te.Problem, tt.problem) {
						t.Errorf("%s: got record %d (%s) %q; want record %d (%s) with %q", via, te.Index, te.Event, te.Problem, tt.index, tt.event, tt.problem)
					}
					t.Logf("%s: %v", via, err)
				}
			})
		}
	})
}

// Without a checkpoint kept elsewhere, cutting the tail together with its
// checkpoints leaves a shorter log that verifies: that is why auditors keep
// checkpoints. The test pins the limit down.
func TestVerifyTruncationNeedsTrustedCheckpoint(t *testing.T) {
	e, _ := tamperedLog(t)
	tamper(t, e,
		"DELETE FROM audit_records WHERE idx >= 8",
		fmt.Sprintf("DELETE FROM audit_hashes WHERE idx >= %d", tlog.StoredHashCount(8)),
		"DELETE FROM audit_checkpoints WHERE size > 8")
	rep, err := audit.VerifyExport(bytes.NewReader(exportOf(t, e.db)), e.keys)
	if err != nil || rep.Records != 8 {
		t.Fatalf("got %+v, %v; want the 8-record prefix to verify on its own", rep, err)
	}
}

// Editing only a query column (not the hashed record) is caught by
// verification against the store, which checks the columns.
func TestVerifyStoreColumns(t *testing.T) {
	testdb.Each(t, testVerifyStoreColumns)
}

func testVerifyStoreColumns(t *testing.T, b testdb.Backend) {
	e, _ := tamperedLogOn(t, b)
	tamper(t, e, "UPDATE audit_records SET portal = 'portal-evil' WHERE idx = 3")
	if _, err := audit.VerifyExport(bytes.NewReader(exportOf(t, e.db)), e.keys); err != nil {
		t.Fatalf("the export holds the hashed record only, and it is intact: %v", err)
	}
	_, err := audit.VerifyStore(context.Background(), e.db, e.keys)
	var te *audit.TamperError
	if !errors.As(err, &te) || te.Index != 3 || !strings.Contains(te.Problem, "portal column") {
		t.Fatalf("store: err = %v, want record 3 portal column", err)
	}
}

func TestVerifyExportMalformed(t *testing.T) {
	e, _ := tamperedLog(t)
	good := exportOf(t, e.db)
	lines := strings.SplitAfter(string(good), "\n")
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", audit.ErrExport},
		{"not json", "hello\n", audit.ErrExport},
		{"no header", strings.Join(lines[1:], ""), audit.ErrExport},
		{"unknown line", lines[0] + `{"type":"gossip"}` + "\n", audit.ErrExport},
		{"checkpoint after records", strings.Join(lines[:3], "") + lines[3] + lines[1], audit.ErrExport},
		{"wrong key", string(good), audit.ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := e.keys
			if tt.name == "wrong key" {
				// Same name, another key: as if someone re-signed the log.
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				vkey, err := audit.NoteVerifierKey(origin, k.Public())
				if err != nil {
					t.Fatal(err)
				}
				if keys, err = audit.NewNoteVerifiers(vkey); err != nil {
					t.Fatal(err)
				}
			}
			_, err := audit.VerifyExport(strings.NewReader(tt.in), keys)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyReportsUnfinishedActivations: a decision to use a key with no
// result after it (a crash between the two) is reported, never hidden; a
// result without its decision is counted apart.
func TestVerifyReportsUnfinishedActivations(t *testing.T) {
	e := newEnv(t, audit.Options{})
	ctx := context.Background()
	rec := func(ev audit.Event, act string) *audit.Record {
		r := &audit.Record{Event: ev, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleCitizen, ID: "cit-1"},
			Citizen: "cit-1", KeyID: "key-1", Details: map[string]string{audit.DetailActivation: act}}
		return r
	}
	change := func(ev audit.Event, id string) *audit.Record {
		return &audit.Record{Event: ev, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleAdmin, ID: "ops"},
			KeyID: "key-2", Details: map[string]string{audit.DetailKeyChange: id}}
	}
	for _, r := range []*audit.Record{
		rec(audit.KeyActivated, "act-done"),
		rec(audit.KeyUsed, "act-done"),
		rec(audit.KeyUsed, "act-done"), // a second batch of the same decision
		rec(audit.KeyActivated, "act-cut"),
		rec(audit.KeyUsed, "act-never-decided"),
		sample(0), // a key.used of before activation records: not counted
		change(audit.KeyGenerateRequested, "kc-done"),
		change(audit.KeyGenerated, "kc-done"),
		change(audit.KeyDestroyRequested, "kc-cut"),
	} {
		if err := e.log.Append(ctx, r); err != nil {
			t.Fatalf("append %s: %v", r.Event, err)
		}
	}
	cp := checkpoint(t, e.log)
	for name, verify := range map[string]func() (*audit.Report, error){
		"export": func() (*audit.Report, error) {
			return audit.VerifyExport(bytes.NewReader(exportOf(t, e.db)), e.keys, cp.Note)
		},
		"store": func() (*audit.Report, error) { return audit.VerifyStore(ctx, e.db, e.keys, cp.Note) },
	} {
		rep, err := verify()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Activations != 2 || rep.KeyChanges != 2 || rep.Unannounced != 1 || len(rep.Unfinished) != 2 {
			t.Fatalf("%s: activations %d, key changes %d, unannounced %d, unfinished %+v; want 2, 2, 1, [act-cut kc-cut]",
				name, rep.Activations, rep.KeyChanges, rep.Unannounced, rep.Unfinished)
		}
		if u := rep.Unfinished[0]; u.ID != "act-cut" || u.Index != 3 || u.KeyID != "key-1" || u.Event != audit.KeyActivated {
			t.Errorf("%s: unfinished[0] = %+v, want act-cut at record 3 of key-1", name, u)
		}
		if u := rep.Unfinished[1]; u.ID != "key-change:kc-cut" || u.Index != 8 || u.Event != audit.KeyDestroyRequested {
			t.Errorf("%s: unfinished[1] = %+v, want the destroy asked at record 8", name, u)
		}
	}
}
