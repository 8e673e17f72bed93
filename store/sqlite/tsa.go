package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.TSAStore = (*DB)(nil)

// CreateTSAUnit stores a new TSA unit.
func (s *DB) CreateTSAUnit(ctx context.Context, u *store.TSAUnit) error {
	_, err := s.write(ctx, `INSERT INTO tsa_units (name, key_id, cert, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)`, u.Name, u.KeyID, u.Cert, u.KeySince.UnixNano(), u.UpdatedAt.UnixNano())
	if err != nil {
		if uniqueViolation(err) {
			return fmt.Errorf("create tsa unit %s: %w", u.Name, store.ErrConflict)
		}
		return fmt.Errorf("create tsa unit %s: %w", u.Name, err)
	}
	return nil
}

// ReplaceTSAUnit stores a new key and certificate for an existing unit
// whose key is still prevKeyID: a compare-and-swap, so that of two
// replicas rolling the key over at once only one wins.
func (s *DB) ReplaceTSAUnit(ctx context.Context, u *store.TSAUnit, prevKeyID string) error {
	res, err := s.write(ctx, "UPDATE tsa_units SET key_id = ?, cert = ?, created_at = ?, updated_at = ? WHERE name = ? AND key_id = ?",
		u.KeyID, u.Cert, u.KeySince.UnixNano(), u.UpdatedAt.UnixNano(), u.Name, prevKeyID)
	if err != nil {
		return fmt.Errorf("replace tsa unit %s: %w", u.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("replace tsa unit %s: %w", u.Name, err)
	}
	if n == 0 {
		if _, err := s.TSAUnit(ctx, u.Name); err != nil {
			return err
		}
		return fmt.Errorf("replace tsa unit %s: key is no longer %s: %w", u.Name, prevKeyID, store.ErrConflict)
	}
	return nil
}

// TSAUnit returns the named TSA unit.
func (s *DB) TSAUnit(ctx context.Context, name string) (*store.TSAUnit, error) {
	var (
		u                store.TSAUnit
		created, updated int64
	)
	err := s.db.QueryRowContext(ctx, "SELECT name, key_id, cert, created_at, updated_at FROM tsa_units WHERE name = ?", name).
		Scan(&u.Name, &u.KeyID, &u.Cert, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tsa unit %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: %w", name, err)
	}
	u.KeySince = time.Unix(0, created).UTC()
	u.UpdatedAt = time.Unix(0, updated).UTC()
	return &u, nil
}

// AllocTSASerials reserves n consecutive serial numbers and returns the
// first. The row is created on first use and bumped with one UPDATE ...
// RETURNING inside an immediate transaction (the DSN asks for BEGIN
// IMMEDIATE), so concurrent callers, in this process or another, are
// serialised by the database's write lock.
func (s *DB) AllocTSASerials(ctx context.Context, sequence string, n int64) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("alloc tsa serials %s: count %d below 1", sequence, n)
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("alloc tsa serials %s: %w", sequence, err)
	}
	defer done()
	if _, err := s.txExec(ctx, tx, "INSERT INTO tsa_serials (sequence, last) VALUES (?, 0) ON CONFLICT (sequence) DO NOTHING", sequence); err != nil {
		return 0, fmt.Errorf("alloc tsa serials %s: %w", sequence, err)
	}
	var last int64
	st, err := s.prepared(ctx, "UPDATE tsa_serials SET last = last + ? WHERE sequence = ? AND last <= ? RETURNING last")
	if err != nil {
		return 0, fmt.Errorf("alloc tsa serials %s: %w", sequence, err)
	}
	err = tx.StmtContext(ctx, st).QueryRowContext(ctx, n, sequence, math.MaxInt64-n).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("alloc tsa serials %s: sequence exhausted", sequence)
	}
	if err != nil {
		return 0, fmt.Errorf("alloc tsa serials %s: %w", sequence, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("alloc tsa serials %s: %w", sequence, err)
	}
	return last - n + 1, nil
}

var _ store.TSAIssuanceStore = (*DB)(nil)

const addTSAIssuance = `INSERT INTO tsa_issuance (interval_id, serial, key_id, issued_at, token_hash, imprint_hash, policy, client)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// AddTSAIssuance stores one token's issuance row.
func (s *DB) AddTSAIssuance(ctx context.Context, r *store.TSAIssuance) error {
	_, err := s.exec(ctx, addTSAIssuance, r.Interval, r.Serial, r.KeyID, r.IssuedAt.UnixNano(), r.TokenHash, r.ImprintHash, r.Policy, r.Client)
	if err != nil {
		return fmt.Errorf("tsa issuance %d: %w", r.Serial, conflict(err))
	}
	return nil
}

var _ store.TSAIssuanceBatchStore = (*DB)(nil)

// AddTSAIssuances stores rs in one transaction: one write lock and one
// WAL commit for all of them.
func (s *DB) AddTSAIssuances(ctx context.Context, rs []*store.TSAIssuance) error {
	if len(rs) == 0 {
		return nil
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("tsa issuances: %w", err)
	}
	defer done()
	for _, r := range rs {
		if _, err := s.txExec(ctx, tx, addTSAIssuance, r.Interval, r.Serial, r.KeyID, r.IssuedAt.UnixNano(), r.TokenHash,
			r.ImprintHash, r.Policy, r.Client); err != nil {
			return fmt.Errorf("tsa issuance %d: %w", r.Serial, conflict(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("tsa issuances: %w", err)
	}
	return nil
}

// TSAIssuances lists an interval's rows by serial.
func (s *DB) TSAIssuances(ctx context.Context, interval string) ([]*store.TSAIssuance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT interval_id, serial, key_id, issued_at, token_hash, imprint_hash, policy, client
		FROM tsa_issuance WHERE interval_id = ? ORDER BY serial`, interval)
	if err != nil {
		return nil, fmt.Errorf("tsa issuances %s: %w", interval, err)
	}
	defer rows.Close()
	var out []*store.TSAIssuance
	for rows.Next() {
		var (
			r  store.TSAIssuance
			at int64
		)
		if err := rows.Scan(&r.Interval, &r.Serial, &r.KeyID, &at, &r.TokenHash, &r.ImprintHash, &r.Policy, &r.Client); err != nil {
			return nil, fmt.Errorf("tsa issuances %s: %w", interval, err)
		}
		r.IssuedAt = time.Unix(0, at).UTC()
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tsa issuances %s: %w", interval, err)
	}
	return out, nil
}
