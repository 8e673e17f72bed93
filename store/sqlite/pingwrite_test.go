package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/store/sqlite"
)

// TestPingWriteLocked holds the write lock from a second handle, as another
// process would: SELECT 1 still answers, the write check fails within its
// one-second wait, and passes again once the lock is gone. Cost: about 1 s.
func TestPingWriteLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "firma.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := db.PingWrite(ctx); err != nil {
		t.Fatalf("write check on a free database: %v", err)
	}
	tx, err := other.SQL().BeginTx(ctx, nil) // BEGIN IMMEDIATE: _txlock=immediate
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("ping with the database locked: %v (reads still work in WAL mode)", err)
	}
	if err := db.PingWrite(ctx); err == nil {
		t.Fatal("write check passed with another handle holding the write lock")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingWrite(ctx); err != nil {
		t.Fatalf("write check after the lock went: %v", err)
	}
}
