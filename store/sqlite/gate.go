package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"golang.org/x/sync/semaphore"
)

// SQLite has one writer. When two of this handle's pooled connections
// both want to write, the loser gets SQLITE_BUSY and SQLite's busy
// handler polls again after sleeping 1, 2, 5, 10, 15... ms: under a burst
// of small writes (a FIRe batch makes some 35) most of a write's latency
// was those sleeps, with the cores idle. The writes of one handle
// therefore queue here first, in Go, and the next one starts as soon as
// the last commits; busy_timeout is left for writers in other processes
// (firmactl on the same file) and the audit log's own connection.

// gateWait bounds how long a write waits for the gate: the busy_timeout
// (10 s) it replaces, so that a write nested inside another handle write
// fails as it did, instead of waiting for ever.
const gateWait = 10 * time.Second

func newGate() *semaphore.Weighted { return semaphore.NewWeighted(1) }

// acquire takes the write gate, within gateWait.
func (s *DB) acquire(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, gateWait)
	defer cancel()
	if err := s.gate.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("sqlite: another write held the database for %s: %w", gateWait, err)
	}
	return nil
}

// begin starts a write transaction (BEGIN IMMEDIATE) behind the gate;
// done rolls it back unless committed and opens the gate: defer it.
func (s *DB) begin(ctx context.Context) (tx *sql.Tx, done func(), err error) {
	if err := s.acquire(ctx); err != nil {
		return nil, nil, err
	}
	tx, err = s.db.BeginTx(ctx, nil)
	if err != nil {
		s.gate.Release(1)
		return nil, nil, err
	}
	return tx, func() { _ = tx.Rollback(); s.gate.Release(1) }, nil
}

// write is db.ExecContext behind the gate, for one-statement writes.
func (s *DB) write(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.gate.Release(1)
	return s.db.ExecContext(ctx, query, args...)
}

// gated is the handle as an execer whose writes pass the gate.
type gated struct{ s *DB }

func (g gated) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return g.s.write(ctx, query, args...)
}

// writeRow is QueryRowContext behind the gate, for writes that return
// a row (RETURNING); the gate is held until Scan has read it.
func (s *DB) writeRow(ctx context.Context, query string, args ...any) rowScanner {
	return gatedRow{s: s, ctx: ctx, query: query, args: args}
}

type gatedRow struct {
	s     *DB
	ctx   context.Context
	query string
	args  []any
}

func (r gatedRow) Scan(dst ...any) error {
	if err := r.s.acquire(r.ctx); err != nil {
		return err
	}
	defer r.s.gate.Release(1)
	return r.s.db.QueryRowContext(r.ctx, r.query, r.args...).Scan(dst...)
}
