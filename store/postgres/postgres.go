package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/firma-cloud/firma/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys, one per thing serialised across nodes. Arbitrary
// constants; they only have to differ from each other and from any other
// application sharing the database.
const (
	lockMigrate = 0x6669726d61000001 // "firma" + 1
	lockAudit   = 0x6669726d61000002
)

// DefaultMaxConns is the least pool size when the DSN sets no
// pool_max_conns; it grows with the cores (four per core).
const DefaultMaxConns = 16

// DB is a store.Store on a PostgreSQL database shared by any number of
// firmad nodes.
type DB struct {
	pool *pgxpool.Pool
}

var (
	_ store.Store    = (*DB)(nil)
	_ store.CSCStore = (*DB)(nil)
)

// Open connects to the database named by dsn (a libpq connection string or
// postgres:// URL; pool_max_conns and the other pgxpool settings may be
// given in it) and applies any pending migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's error shows the DSN with its password redacted.
		return nil, fmt.Errorf("open postgres: bad dsn: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default, max(4, cores), queues requests behind a few
		// connections while most of a signature's time is the HSM's, not
		// the database's.
		cfg.MaxConns = int32(max(DefaultMaxConns, 4*runtime.GOMAXPROCS(0)))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Pool returns the connection pool, for tools and tests.
func (s *DB) Pool() *pgxpool.Pool { return s.pool }

// Close closes every connection of the pool.
func (s *DB) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres ping: %w", err)
	}
	return nil
}

// PingWrite checks, within a second, that the database takes writes now:
// a read-write transaction is given a transaction ID (which a read-only
// standby or a database out of XIDs refuses) and rolled back, so nothing
// is written.
func (s *DB) PingWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err != nil {
		return fmt.Errorf("postgres write check: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 1000"); err != nil {
		return fmt.Errorf("postgres write check: %w", err)
	}
	var xid int64
	if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); err != nil {
		return fmt.Errorf("postgres write check: %w", err)
	}
	return nil
}

// migrate applies, in order and each in its own transaction, every
// migrations/NNNN_name.sql whose version is above the recorded one, the
// same runner as the SQLite store's. A session advisory lock makes nodes
// that start together take turns: the second finds the work done.
func (s *DB) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockMigrate)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even if ctx was cancelled, or
		// the pooled connection would keep it.
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(lockMigrate)); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var current int
	if err := conn.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migrate: bad migration file name %q", name)
		}
		if v <= current {
			continue
		}
		body, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends the file with the simple protocol,
			// which runs several statements in one call.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", v, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

// PostgreSQL error codes the store maps to sentinels.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func isUnique(err error) bool { return pgCode(err) == codeUniqueViolation }

// conflict turns a unique violation into store.ErrConflict.
func conflict(err error) error {
	if isUnique(err) {
		return store.ErrConflict
	}
	return err
}

// notFound turns pgx.ErrNoRows into store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// placeholders returns "$from, $from+1, ..." for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}
