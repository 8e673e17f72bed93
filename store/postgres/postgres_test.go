package postgres_test

import (
	"context"
	"os"
	"testing"

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
