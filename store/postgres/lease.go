package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrLeaseHeld is returned by TryLease while another session holds the
// lease.
var ErrLeaseHeld = errors.New("lease held by another node")

// Lease is a named PostgreSQL session advisory lock held on a connection of
// its own: at most one node holds a name at a time, for jobs that must run
// once across the nodes (the audit signature notifier, whose cursor the
// nodes would otherwise advance past each other). The lock ends with its
// connection, so a node that dies hands it on without a timeout.
type Lease struct {
	conn *pgxpool.Conn
	key  int64
	name string
}

// TryLease takes the named lease, or returns ErrLeaseHeld at once if
// another node has it.
func (s *DB) TryLease(ctx context.Context, name string) (*Lease, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", name, err)
	}
	var (
		key int64
		ok  bool
	)
	// hashtextextended: a stable 64-bit key per name, on every node.
	err = conn.QueryRow(ctx, "SELECT k, pg_try_advisory_lock(k) FROM (SELECT hashtextextended('firma-lease:' || $1, 0) AS k) x", name).Scan(&key, &ok)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("lease %s: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("lease %s: %w", name, ErrLeaseHeld)
	}
	return &Lease{conn: conn, key: key, name: name}, nil
}

// Check confirms the lease is still held: its connection answers and the
// lock is still its own. A holder checks before each round of work and
// stops on an error.
func (l *Lease) Check(ctx context.Context) error {
	var held bool
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
		AND granted AND ((classid::bigint << 32) | objid::bigint) = $1)`, l.key).Scan(&held)
	if err != nil {
		return fmt.Errorf("lease %s: %w", l.name, err)
	}
	if !held {
		return fmt.Errorf("lease %s: lost", l.name)
	}
	return nil
}

// Release gives the lease up. If the unlock cannot be confirmed the
// connection is closed rather than pooled, so the lock cannot outlive the
// lease on a reused connection.
func (l *Lease) Release() {
	var ok bool
	if err := l.conn.QueryRow(context.Background(), "SELECT pg_advisory_unlock($1)", l.key).Scan(&ok); err == nil && ok {
		l.conn.Release()
		return
	}
	c := l.conn.Hijack()
	c.Close(context.Background())
}
