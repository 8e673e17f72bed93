package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firma-cloud/firma/store"
)

var _ store.AttemptStore = (*DB)(nil)

// Attempts returns a scope's wrong-secret counter.
func (s *DB) Attempts(ctx context.Context, scope string) (int, time.Time, time.Time, error) {
	var (
		n           int
		last, until *int64
	)
	err := s.pool.QueryRow(ctx, "SELECT failures, last_failure, locked_until FROM attempts WHERE scope = $1", scope).Scan(&n, &last, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("attempts: %w", err)
	}
	return n, fromNanos(last), fromNanos(until), nil
}

// UpdateAttempts applies fn to a scope's counter under the row's lock:
// the row is made first if missing (a concurrent maker waits for ours),
// then read FOR UPDATE, so writers on every node take turns.
func (s *DB) UpdateAttempts(ctx context.Context, scope string, fn func(int, time.Time, time.Time) (int, time.Time, time.Time)) error {
	// A reset between the insert and the read leaves no row to lock: the
	// step is then taken again.
	var err error
	for range 5 {
		if err = s.updateAttempts(ctx, scope, fn); !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("update attempts: %w", err)
	}
	return nil
}

func (s *DB) updateAttempts(ctx context.Context, scope string, fn func(int, time.Time, time.Time) (int, time.Time, time.Time)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO attempts (scope) VALUES ($1) ON CONFLICT (scope) DO NOTHING", scope); err != nil {
			return err
		}
		var (
			n           int
			last, until *int64
		)
		if err := tx.QueryRow(ctx, "SELECT failures, last_failure, locked_until FROM attempts WHERE scope = $1 FOR UPDATE", scope).
			Scan(&n, &last, &until); err != nil {
			return err
		}
		n2, last2, until2 := fn(n, fromNanos(last), fromNanos(until))
		_, err := tx.Exec(ctx, "UPDATE attempts SET failures = $2, last_failure = $3, locked_until = $4 WHERE scope = $1",
			scope, n2, nanos(last2), nanos(until2))
		return err
	})
}

// ResetAttempts deletes a scope's counter.
func (s *DB) ResetAttempts(ctx context.Context, scope string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM attempts WHERE scope = $1", scope); err != nil {
		return fmt.Errorf("reset attempts: %w", err)
	}
	return nil
}

// SweepAttempts deletes the counters dead at now (store.SweepAttemptsWhere).
// A row locked by an update in progress is deleted only if the committed
// update left it dead (READ COMMITTED re-checks the condition).
func (s *DB) SweepAttempts(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM attempts WHERE "+fmt.Sprintf(store.SweepAttemptsWhere, "$1", "$2"),
		now.UnixNano(), now.Add(-window).UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sweep attempts: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
