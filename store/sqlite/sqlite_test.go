package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/store/storetest"
)

func open(t *testing.T, path string) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStore runs the conformance suite; a second handle on the same file
// stands for a second node.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, storetest.Reopen) {
		path := filepath.Join(t.TempDir(), "firma.db")
		return open(t, path), func(t *testing.T) store.Store { return open(t, path) }
	})
}

// TestStoreJournal runs the audit conformance cases with appends going
// through the journal: every read must see every append at once, though
// the records reach the tables later.
func TestStoreJournal(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) (store.Store, storetest.Reopen) {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "firma.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
		if err := db.JournalAudit(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db, nil
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "firma.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	})
}
