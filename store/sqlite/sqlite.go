package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/firma-cloud/firma/store"
	"golang.org/x/sync/semaphore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store on one SQLite file.
type DB struct {
	db    *sql.DB
	path  string
	audit auditWriter

	journal *journal // nil unless JournalAudit was called

	lockMu sync.Mutex
	lock   *os.File // the audit lock file, once this handle appended
	lockEx bool     // lock is held exclusive, for the journal

	// stmts are the prepared statements of the reads and writes every
	// portal request makes (query text -> *sql.Stmt): the driver parses a
	// query again on every call otherwise, about a tenth of a FIRe batch's
	// CPU. database/sql prepares each again on the connections that run it.
	stmts sync.Map

	gate *semaphore.Weighted // one write at a time from this handle: gate.go
}

// prepared returns query prepared once for this handle.
func (s *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := s.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow is QueryRowContext through a prepared statement.
func (s *DB) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// exec is ExecContext through a prepared statement.
func (s *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.gate.Release(1)
	return st.ExecContext(ctx, args...)
}

// txExec is tx.ExecContext through a prepared statement, which
// database/sql keeps on the transaction's connection once prepared there.
func (s *DB) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

type rowScanner interface{ Scan(...any) error }

// errRow is a row whose Scan fails with the preparation's error.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the SQLite database at path and applies
// any pending migrations. ":memory:" is not supported: use a file in a temp
// dir, since every pooled connection would otherwise see its own database.
func Open(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	// Keep them all: database/sql's default keeps 2 idle, so under load
	// the other 6 were closed and opened again, each open running the
	// pragmas above and losing its prepared statements (6% of a FIRe
	// batch bench's CPU went to opening connections).
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	s := &DB{db: db, path: path, gate: newGate()}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// SQL returns the underlying handle, for packages that add their own tables.
func (s *DB) SQL() *sql.DB { return s.db }

// Close closes the database.
func (s *DB) Close() error {
	var jerr error
	if s.journal != nil {
		jerr = s.journal.close()
		s.journal = nil
	}
	s.audit.close()
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	err := s.db.Close()
	s.unlockAudit()
	return errors.Join(jerr, err)
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite ping: %w", err)
	}
	return nil
}

// writeCheckWait bounds how long PingWrite waits for the write lock,
// instead of the 10 s busy_timeout writes wait: a readiness probe must
// answer within its own timeout.
const writeCheckWait = time.Second

// PingWrite checks that a write could be made now: it takes the write lock
// (BEGIN IMMEDIATE) and rolls back, so it writes nothing. A database
// locked by another process, or a file that cannot be written, fails it
// while SELECT 1 still answers.
func (s *DB) PingWrite(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite write check: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", writeCheckWait.Milliseconds())); err != nil {
		return fmt.Errorf("sqlite write check: %w", err)
	}
	// The connection goes back to the pool: give it the writes' wait again.
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA busy_timeout = 10000")
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite write check: %w", err)
	}
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		return fmt.Errorf("sqlite write check: rollback: %w", err)
	}
	// Taking the lock writes nothing, so a full disk passes it while every
	// real write fails (SQLITE_FULL): look at the space left too.
	if free := freeBytes(filepath.Dir(s.path)); free >= 0 && free < minFreeBytes {
		return fmt.Errorf("sqlite write check: %w: %d bytes free where %s is", ErrDiskFull, free, filepath.Base(s.path))
	}
	return nil
}

// minFreeBytes is the space below which the database counts as full for
// the write check: a transaction's rows, its documents and the WAL pages
// of a commit need room, and writes fail well before the last byte.
const minFreeBytes = 4 << 20

// ErrDiskFull is what PingWrite wraps when the file system holding the
// database has less than minFreeBytes left.
var ErrDiskFull = errors.New("the disk holding the database is full")

// migrate applies, in order and each in its own transaction, every
// migrations/NNNN_name.sql whose version is above the recorded one.
// Written by hand: the runner is twenty lines and a migration library would
// bring a driver registry of its own.
func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var current int
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
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
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", v, name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}
