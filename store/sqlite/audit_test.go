package sqlite_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

func auditBatch(from, n int64) ([]*store.AuditRecord, []store.AuditHash) {
	var (
		recs   []*store.AuditRecord
		hashes []store.AuditHash
	)
	for i := from; i < from+n; i++ {
		r := &store.AuditRecord{Index: i, Time: time.Unix(1_700_000_000+i, 0), Event: "key.used", Outcome: "success",
			ActorRole: "portal", ActorID: "p", Citizen: fmt.Sprintf("c%d", i%3), Portal: "p", KeyID: "k", Documents: 1,
			Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		recs = append(recs, r)
		hashes = append(hashes, store.AuditHash{Index: i, Hash: sha256.Sum256(r.Data)})
	}
	return recs, hashes
}

func count(t *testing.T, db *sqlite.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.SQL().QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditIndexLag: appends write only the records and their hashes; the
// query columns reach audit_index in bulk once 512 records wait, and
// queries see indexed and unindexed records alike.
func TestAuditIndexLag(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	steps := []struct {
		append, indexed int64
	}{{511, 0}, {1, 512}, {100, 512}, {411, 512}, {1, 1024}, {3, 1024}}
	var size int64
	for _, s := range steps {
		for i := int64(0); i < s.append; i++ {
			recs, hashes := auditBatch(size, 1)
			if err := db.AppendAudit(ctx, recs, hashes, false); err != nil {
				t.Fatal(err)
			}
			size++
		}
		if got := count(t, db, "SELECT COUNT(*) FROM audit_index"); got != s.indexed {
			t.Errorf("after %d records: %d indexed, want %d", size, got, s.indexed)
		}
		got, err := db.QueryAudit(ctx, store.AuditFilter{Citizen: "c1", Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		if want := (size + 1) / 3; int64(len(got)) != want {
			t.Errorf("after %d records: %d of citizen c1, want %d", size, len(got), want)
		}
	}
}

// TestAuditIndexMigration: a log written before migration 10, with the
// indexes on audit_records, is copied into audit_index by it.
func TestAuditIndexMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Back to version 9's schema.
	for _, q := range []string{
		"DROP TABLE audit_index",
		"CREATE INDEX audit_records_citizen ON audit_records (citizen, idx) WHERE citizen <> ''",
		"CREATE INDEX audit_records_portal ON audit_records (portal, idx) WHERE portal <> ''",
		"CREATE INDEX audit_records_key ON audit_records (key_id, idx) WHERE key_id <> ''",
		"CREATE INDEX audit_records_event ON audit_records (event, idx)",
		"CREATE INDEX audit_records_time ON audit_records (time)",
		"ALTER TABLE transaction_documents DROP COLUMN sign_options", // 0015: ADD COLUMN cannot run twice
		"DELETE FROM schema_migrations WHERE version >= 10",
	} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	recs, _ := auditBatch(0, 300)
	for _, r := range recs {
		if _, err := db.SQL().Exec(`INSERT INTO audit_records (idx, time, event, outcome, actor_role, actor_id, citizen, portal,
			key_id, request_id, documents, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Index, r.Time.UnixNano(), r.Event,
			r.Outcome, r.ActorRole, r.ActorID, r.Citizen, r.Portal, r.KeyID, r.RequestID, r.Documents, string(r.Data)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if db, err = sqlite.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := count(t, db, "SELECT COUNT(*) FROM audit_index"); got != 300 {
		t.Errorf("migrated index has %d records, want 300", got)
	}
	if got := count(t, db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_records' AND sql IS NOT NULL"); got != 0 {
		t.Errorf("%d indexes left on audit_records", got)
	}
	got, err := db.QueryAudit(ctx, store.AuditFilter{Citizen: "c2", Limit: 1000})
	if err != nil || len(got) != 100 {
		t.Errorf("citizen c2: %d records, %v", len(got), err)
	}
}
