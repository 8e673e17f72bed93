package store

import (
	"context"
	"time"
)

// AttemptStore keeps the wrong-secret counter of each attempt scope (see
// policy.Attempts, whose policy.AttemptStore it satisfies): a durable cell
// per scope that every node sharing the database updates atomically. The
// store decides nothing; the policy computes each new value.
type AttemptStore interface {
	// Attempts returns the scope's counter; zeros if it has none.
	Attempts(ctx context.Context, scope string) (failures int, lastFailure, lockedUntil time.Time, err error)
	// UpdateAttempts reads the scope's counter (zeros if none), calls fn
	// with it and stores what fn returns, in one transaction that holds
	// the scope's row against every other writer until it commits.
	UpdateAttempts(ctx context.Context, scope string,
		fn func(failures int, lastFailure, lockedUntil time.Time) (int, time.Time, time.Time)) error
	// ResetAttempts forgets the scope's counter.
	ResetAttempts(ctx context.Context, scope string) error
}
