package testdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/postgres"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
	"github.com/firma-cloud/firma/store/sqlite"
)

// EnvStore names the backend Default returns.
const EnvStore = "FIRMA_TEST_STORE"

// Backend is one store implementation.
type Backend struct {
	Name string // "sqlite" or "postgres"
	// source makes a new empty database and returns what opens it.
	source func(t testing.TB) string
	open   func(ctx context.Context, src string) (store.Store, error)
	// exec runs SQL statements on a store of this backend.
	exec func(t testing.TB, s store.Store, stmts []string)
	// unguard are the statements that lift the audit tables' append-only
	// triggers.
	unguard []string
}

// SQLite is the embedded backend.
var SQLite = Backend{
	Name:   "sqlite",
	source: func(t testing.TB) string { return filepath.Join(t.TempDir(), "firma.db") },
	open: func(ctx context.Context, src string) (store.Store, error) {
		return sqlite.Open(ctx, src)
	},
	exec: func(t testing.TB, s store.Store, stmts []string) {
		t.Helper()
		db := s.(*sqlite.DB)
		for _, q := range stmts {
			if _, err := db.SQL().ExecContext(context.Background(), q); err != nil {
				t.Fatalf("sqlite: %q: %v", q, err)
			}
		}
	},
	unguard: []string{
		"DROP TRIGGER audit_records_no_update", "DROP TRIGGER audit_records_no_delete",
		"DROP TRIGGER audit_hashes_no_update", "DROP TRIGGER audit_hashes_no_delete",
		"DROP TRIGGER audit_checkpoints_no_update", "DROP TRIGGER audit_checkpoints_no_delete",
	},
}

// Postgres is the shared backend, on the test binary's own server.
var Postgres = Backend{
	Name:   "postgres",
	source: pgtest.New,
	open: func(ctx context.Context, src string) (store.Store, error) {
		return postgres.Open(ctx, src)
	},
	exec: func(t testing.TB, s store.Store, stmts []string) {
		t.Helper()
		db := s.(*postgres.DB)
		for _, q := range stmts {
			if _, err := db.Pool().Exec(context.Background(), q); err != nil {
				t.Fatalf("postgres: %q: %v", q, err)
			}
		}
	},
	unguard: []string{
		"ALTER TABLE audit_records DISABLE TRIGGER USER",
		"ALTER TABLE audit_hashes DISABLE TRIGGER USER",
		"ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
	},
}

// All lists every backend.
func All() []Backend { return []Backend{SQLite, Postgres} }

// Default returns the backend FIRMA_TEST_STORE names, SQLite if it is
// unset. An unknown name fails the test.
func Default(t testing.TB) Backend {
	t.Helper()
	switch v := os.Getenv(EnvStore); v {
	case "", SQLite.Name:
		return SQLite
	case Postgres.Name:
		return Postgres
	default:
		t.Fatalf("%s=%q: want sqlite or postgres", EnvStore, v)
		return Backend{}
	}
}

// Each runs fn as one subtest per backend.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range All() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// DB is a database made for one test: open it as many times as nodes or
// restarts need.
type DB struct {
	b   Backend
	src string
}

// New makes a new empty database on the backend.
func (b Backend) New(t testing.TB) *DB {
	t.Helper()
	return &DB{b: b, src: b.source(t)}
}

// Open makes a new empty database and opens it; it closes when the test
// ends.
func (b Backend) Open(t testing.TB) store.Store {
	t.Helper()
	return b.New(t).Open(t)
}

// Backend returns the database's backend.
func (d *DB) Backend() Backend { return d.b }

// Open opens a handle on the database, applying migrations; it closes when
// the test ends (closing it earlier is fine).
func (d *DB) Open(t testing.TB) store.Store {
	t.Helper()
	s, err := d.b.open(context.Background(), d.src)
	if err != nil {
		t.Fatalf("open %s store: %v", d.b.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Exec runs SQL on s, a store of this backend, as someone with direct
// access to the database would.
func (b Backend) Exec(t testing.TB, s store.Store, stmts ...string) {
	t.Helper()
	b.exec(t, s, stmts)
}

// Tamper runs SQL on s as an attacker with direct access to the database
// would: it lifts the audit tables' append-only triggers first.
func (b Backend) Tamper(t testing.TB, s store.Store, stmts ...string) {
	t.Helper()
	b.exec(t, s, append(append([]string{}, b.unguard...), stmts...))
}

// Blob returns an SQL literal of the backend's binary type holding v.
func (b Backend) Blob(v []byte) string {
	if b.Name == Postgres.Name {
		return fmt.Sprintf(`'\x%x'::bytea`, v)
	}
	return fmt.Sprintf("x'%x'", v)
}

// QueryString runs a query returning one text value on s.
func (b Backend) QueryString(t testing.TB, s store.Store, q string) string {
	t.Helper()
	var v string
	var err error
	switch db := s.(type) {
	case *sqlite.DB:
		err = db.SQL().QueryRowContext(context.Background(), q).Scan(&v)
	case *postgres.DB:
		err = db.Pool().QueryRow(context.Background(), q).Scan(&v)
	default:
		t.Fatalf("query: store %T is neither backend", s)
	}
	if err != nil {
		t.Fatalf("%s: %q: %v", b.Name, q, err)
	}
	return v
}

// Cleanup stops the PostgreSQL server the test binary started, if any.
// Call it from TestMain after m.Run.
func Cleanup() { pgtest.Cleanup() }
