package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firma-cloud/firma/store"
)

var _ store.TSAStore = (*DB)(nil)

// CreateTSAUnit stores a new TSA unit.
func (s *DB) CreateTSAUnit(ctx context.Context, u *store.TSAUnit) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tsa_units (name, key_id, cert, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)`, u.Name, u.KeyID, u.Cert, u.KeySince.UnixNano(), u.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("create tsa unit %s: %w", u.Name, conflict(err))
	}
	return nil
}

// ReplaceTSAUnit stores a new key and certificate for a unit whose key is
// still prevKeyID: a compare-and-swap, so that of two nodes rolling the key
// over at once only one wins.
func (s *DB) ReplaceTSAUnit(ctx context.Context, u *store.TSAUnit, prevKeyID string) error {
	tag, err := s.pool.Exec(ctx, "UPDATE tsa_units SET key_id = $1, cert = $2, created_at = $3, updated_at = $4 WHERE name = $5 AND key_id = $6",
		u.KeyID, u.Cert, u.KeySince.UnixNano(), u.UpdatedAt.UnixNano(), u.Name, prevKeyID)
	if err != nil {
		return fmt.Errorf("replace tsa unit %s: %w", u.Name, err)
	}
	if tag.RowsAffected() == 0 {
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
	err := s.pool.QueryRow(ctx, "SELECT name, key_id, cert, created_at, updated_at FROM tsa_units WHERE name = $1", name).
		Scan(&u.Name, &u.KeyID, &u.Cert, &created, &updated)
	if err != nil {
		return nil, fmt.Errorf("tsa unit %s: %w", name, notFound(err))
	}
	u.KeySince = time.Unix(0, created).UTC()
	u.UpdatedAt = time.Unix(0, updated).UTC()
	return &u, nil
}

// AllocTSASerials reserves n consecutive serial numbers and returns the
// first. One upsert: the row lock it takes makes a concurrent call on any
// node wait and then add to the committed value, and it commits before
// returning, so numbers are never handed out twice.
func (s *DB) AllocTSASerials(ctx context.Context, sequence string, n int64) (int64, error) {
	if n < 1 {
		return 0, fmt.Errorf("alloc tsa serials %s: count %d below 1", sequence, n)
	}
	var last int64
	err := s.pool.QueryRow(ctx, `INSERT INTO tsa_serials AS t (sequence, last) VALUES ($1, $2)
		ON CONFLICT (sequence) DO UPDATE SET last = t.last + $2 WHERE t.last <= $3
		RETURNING last`, sequence, n, int64(math.MaxInt64)-n).Scan(&last)
	if err != nil {
		if notFound(err) == store.ErrNotFound {
			return 0, fmt.Errorf("alloc tsa serials %s: sequence exhausted", sequence)
		}
		return 0, fmt.Errorf("alloc tsa serials %s: %w", sequence, err)
	}
	return last - n + 1, nil
}

var _ store.TSAIssuanceStore = (*DB)(nil)

// AddTSAIssuance stores one token's issuance row.
func (s *DB) AddTSAIssuance(ctx context.Context, r *store.TSAIssuance) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tsa_issuance (interval_id, serial, key_id, issued_at, token_hash, imprint_hash, policy, client)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.Interval, r.Serial, r.KeyID, r.IssuedAt.UnixNano(), r.TokenHash, r.ImprintHash, r.Policy, r.Client)
	if err != nil {
		return fmt.Errorf("tsa issuance %d: %w", r.Serial, conflict(err))
	}
	return nil
}

var _ store.TSAIssuanceBatchStore = (*DB)(nil)

// AddTSAIssuances stores rs in one transaction, sent as one batch: one
// round trip and one commit for all of them.
func (s *DB) AddTSAIssuances(ctx context.Context, rs []*store.TSAIssuance) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("tsa issuances: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var b pgx.Batch
	for _, r := range rs {
		b.Queue(`INSERT INTO tsa_issuance (interval_id, serial, key_id, issued_at, token_hash, imprint_hash, policy, client)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.Interval, r.Serial, r.KeyID, r.IssuedAt.UnixNano(), r.TokenHash, r.ImprintHash, r.Policy, r.Client)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("tsa issuances: %w", conflict(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("tsa issuances: %w", err)
	}
	return nil
}

// TSAIssuances lists an interval's rows by serial.
func (s *DB) TSAIssuances(ctx context.Context, interval string) ([]*store.TSAIssuance, error) {
	rows, err := s.pool.Query(ctx, `SELECT interval_id, serial, key_id, issued_at, token_hash, imprint_hash, policy, client
		FROM tsa_issuance WHERE interval_id = $1 ORDER BY serial`, interval)
	if err != nil {
		return nil, fmt.Errorf("tsa issuances %s: %w", interval, err)
	}
	out, err := collect(rows, func(sc scanner) (*store.TSAIssuance, error) {
		var (
			r  store.TSAIssuance
			at int64
		)
		if err := sc.Scan(&r.Interval, &r.Serial, &r.KeyID, &at, &r.TokenHash, &r.ImprintHash, &r.Policy, &r.Client); err != nil {
			return nil, err
		}
		r.IssuedAt = time.Unix(0, at).UTC()
		return &r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("tsa issuances %s: %w", interval, err)
	}
	return out, nil
}
