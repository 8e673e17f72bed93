package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/postgres"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
	"github.com/firma-cloud/firma/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

func open(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStore runs the conformance suite; a second pool on the same database
// stands for a second node.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Reopen) {
		dsn := pgtest.New(t)
		return open(t, dsn), func(t *testing.T) store.Store { return open(t, dsn) }
	})
}

// TestMigrationsOnce opens several nodes on a new database at once: the
// advisory lock lets one migrate and the others find the schema made.
func TestMigrationsOnce(t *testing.T) {
	dsn := pgtest.New(t)
	const nodes = 4
	errs := make(chan error, nodes)
	for range nodes {
		go func() {
			db, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatalf("node start: %v", err)
		}
	}
	db := open(t, dsn)
	var n, max int
	if err := db.Pool().QueryRow(context.Background(), "SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	if n != len(files) || max != len(files) {
		t.Fatalf("%d migrations recorded, highest %d; want each of the %d files once", n, max, len(files))
	}
	// The SQLite store has the same migrations, by number and name.
	sqliteFiles, _ := filepath.Glob("../sqlite/migrations/*.sql")
	if len(sqliteFiles) != len(files) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL ones", len(sqliteFiles), len(files))
	}
	for i := range files {
		if filepath.Base(files[i]) != filepath.Base(sqliteFiles[i]) {
			t.Errorf("migration %d: %s here, %s in SQLite", i+1, filepath.Base(files[i]), filepath.Base(sqliteFiles[i]))
		}
	}
}

// TestAuditAppendOnly checks that the database itself refuses to change or
// remove audit rows, whoever asks.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	db := open(t, pgtest.New(t))
	rec := &store.AuditRecord{Index: 0, Time: time.Now(), Event: "key.used", Outcome: "success", ActorRole: "system", ActorID: "t", Data: []byte(`{"seq":0}`)}
	if err := db.AppendAudit(ctx, []*store.AuditRecord{rec}, []store.AuditHash{{Index: 0}}, true); err != nil {
		t.Fatal(err)
	}
	if err := db.AddAuditCheckpoint(ctx, &store.AuditCheckpoint{Size: 1, Note: []byte("n"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE audit_records SET data = '{}' WHERE idx = 0",
		"DELETE FROM audit_records",
		"TRUNCATE audit_records",
		"UPDATE audit_hashes SET hash = '\\x00'::bytea",
		"DELETE FROM audit_hashes",
		"TRUNCATE audit_hashes CASCADE",
		"UPDATE audit_checkpoints SET note = 'x'",
		"DELETE FROM audit_checkpoints",
		"TRUNCATE audit_checkpoints",
	} {
		_, err := db.Pool().Exec(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if recs, err := db.AuditRecords(ctx, 0, 10); err != nil || len(recs) != 1 || string(recs[0].Data) != `{"seq":0}` {
		t.Fatalf("record after the attempts: %v %v", recs, err)
	}
}

// TestLease: one node at a time holds a name; it passes on when the holder
// releases it or its node goes away.
func TestLease(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.New(t)
	a, b := open(t, dsn), open(t, dsn)
	la, err := a.TryLease(ctx, "notify")
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Check(ctx); err != nil {
		t.Fatalf("check the held lease: %v", err)
	}
	if _, err := b.TryLease(ctx, "notify"); !errors.Is(err, postgres.ErrLeaseHeld) {
		t.Fatalf("second node: %v, want ErrLeaseHeld", err)
	}
	other, err := b.TryLease(ctx, "another job")
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	other.Release()
	la.Release()
	lb, err := b.TryLease(ctx, "notify")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	// The holder's node dies: its connection goes, and so does the lock.
	if _, err := a.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if err := lb.Check(ctx); err == nil {
		t.Fatal("check on a dead connection passed")
	}
	lb.Release()
	var lc *postgres.Lease
	for range 100 {
		if lc, err = a.TryLease(ctx, "notify"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after the holder went away: %v", err)
	}
	lc.Release()
}

// TestPingWrite checks that the write check passes on a writable database
// and fails once the database is gone (its pool closed).
func TestPingWrite(t *testing.T) {
	db := open(t, pgtest.New(t))
	if err := db.PingWrite(context.Background()); err != nil {
		t.Fatalf("write check on a writable database: %v", err)
	}
	db.Close()
	if err := db.PingWrite(context.Background()); err == nil {
		t.Fatal("write check passed with the pool closed")
	}
}
