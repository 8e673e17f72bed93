package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.AttemptStore = (*DB)(nil)

// Attempts returns a scope's wrong-secret counter.
func (s *DB) Attempts(ctx context.Context, scope string) (int, time.Time, time.Time, error) {
	var (
		n           int
		last, until sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, "SELECT failures, last_failure, locked_until FROM attempts WHERE scope = ?", scope).Scan(&n, &last, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("attempts: %w", err)
	}
	return n, regTime(last), regTime(until), nil
}

// UpdateAttempts applies fn to a scope's counter in one write transaction:
// the store opens them IMMEDIATE (_txlock), so the read and the write are
// not interleaved with another writer's, on any handle.
func (s *DB) UpdateAttempts(ctx context.Context, scope string, fn func(int, time.Time, time.Time) (int, time.Time, time.Time)) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("update attempts: %w", err)
	}
	defer done()
	var (
		n           int
		last, until sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, "SELECT failures, last_failure, locked_until FROM attempts WHERE scope = ?", scope).Scan(&n, &last, &until)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("update attempts: %w", err)
	}
	n2, last2, until2 := fn(n, regTime(last), regTime(until))
	if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (scope, failures, last_failure, locked_until) VALUES (?, ?, ?, ?)
		ON CONFLICT (scope) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure, locked_until = excluded.locked_until`,
		scope, n2, regNano(last2), regNano(until2)); err != nil {
		return fmt.Errorf("update attempts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update attempts: %w", err)
	}
	return nil
}

// ResetAttempts deletes a scope's counter.
func (s *DB) ResetAttempts(ctx context.Context, scope string) error {
	if _, err := s.write(ctx, "DELETE FROM attempts WHERE scope = ?", scope); err != nil {
		return fmt.Errorf("reset attempts: %w", err)
	}
	return nil
}

// SweepAttempts deletes the counters dead at now (store.SweepAttemptsWhere).
func (s *DB) SweepAttempts(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	res, err := s.write(ctx, "DELETE FROM attempts WHERE "+fmt.Sprintf(store.SweepAttemptsWhere, "?1", "?2"),
		now.UnixNano(), now.Add(-window).UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sweep attempts: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sweep attempts: %w", err)
	}
	return int(n), nil
}
