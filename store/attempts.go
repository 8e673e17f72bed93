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
	// SweepAttempts deletes the counters that count nothing any more at
	// now, and says how many: a lock that has ended, or (never locked) a
	// last failure at least window before now. window must be the longest
	// any scope's rule looks back (its attempt window, or a session's
	// lifetime for cells that keep a sign-out time); a row updated while
	// it is swept is kept if the update left it live.
	SweepAttempts(ctx context.Context, now time.Time, window time.Duration) (int, error)
}

// SweepAttemptsWhere is the condition of a dead counter, with the
// parameters now and now-window (Unix nanoseconds) in that order. A NULL
// time is none: such a row (never failed) is dead too.
const SweepAttemptsWhere = `(locked_until IS NOT NULL AND locked_until <= %[1]s) OR
	(locked_until IS NULL AND COALESCE(last_failure, 0) <= %[2]s)`
