package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firma-cloud/firma/store"
)

var _ store.AuditStore = (*DB)(nil)

const auditColumns = "idx, time, event, outcome, actor_role, actor_id, citizen, portal, key_id, request_id, documents, data"

var auditColumnList = []string{"idx", "time", "event", "outcome", "actor_role", "actor_id", "citizen", "portal", "key_id",
	"request_id", "documents", "data"}

// AppendAudit stores a batch of audit records and their tree hashes in one
// transaction.
//
// Nodes append to one log: a transaction-scoped advisory lock orders their
// appends, so the size read here is the size the insert extends and a node
// whose view of the tree is stale gets ErrConflict (and re-reads) instead
// of a gap or a fork. The primary keys on idx are the second line.
//
// Without flush the commit does not wait for the WAL flush
// (synchronous_commit off): it survives firmad crashing, as the SQLite
// store's NORMAL does, not the database server losing power; with flush it
// waits (synchronous_commit on).
func (s *DB) AppendAudit(ctx context.Context, recs []*store.AuditRecord, hashes []store.AuditHash, flush bool) error {
	if len(recs) == 0 {
		return nil
	}
	for i, r := range recs {
		if r.Index != recs[0].Index+int64(i) {
			return fmt.Errorf("append audit: record %d out of sequence: %w", r.Index, store.ErrConflict)
		}
	}
	sync := "off"
	if flush {
		sync = "on"
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('synchronous_commit', $1, true), pg_advisory_xact_lock($2)", sync, int64(lockAudit)); err != nil {
			return err
		}
		var size int64
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records").Scan(&size); err != nil {
			return err
		}
		if recs[0].Index != size {
			return fmt.Errorf("at %d, log size %d: %w", recs[0].Index, size, store.ErrConflict)
		}
		// COPY: one round trip for the batch whatever its size.
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_records"}, auditColumnList, pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
			r := recs[i]
			return []any{r.Index, r.Time.UnixNano(), r.Event, r.Outcome, r.ActorRole, r.ActorID, r.Citizen, r.Portal, r.KeyID,
				r.RequestID, r.Documents, string(r.Data)}, nil
		})); err != nil {
			return fmt.Errorf("records %d-%d: %w", recs[0].Index, recs[len(recs)-1].Index, conflict(err))
		}
		if len(hashes) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_hashes"}, []string{"idx", "hash"}, pgx.CopyFromSlice(len(hashes), func(i int) ([]any, error) {
				return []any{hashes[i].Index, hashes[i].Hash[:]}, nil
			})); err != nil {
				return fmt.Errorf("hashes from %d: %w", hashes[0].Index, conflict(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// AuditSize returns the number of audit records.
func (s *DB) AuditSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records").Scan(&n); err != nil {
		return 0, fmt.Errorf("audit size: %w", err)
	}
	return n, nil
}

// AuditHashes returns stored tree hashes by index.
func (s *DB) AuditHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if len(indexes) == 0 {
		return [][32]byte{}, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT idx, hash FROM audit_hashes WHERE idx = ANY($1)", indexes)
	if err != nil {
		return nil, fmt.Errorf("audit hashes: %w", err)
	}
	defer rows.Close()
	got := make(map[int64][]byte, len(indexes))
	for rows.Next() {
		var (
			idx int64
			h   []byte
		)
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, fmt.Errorf("audit hashes: %w", err)
		}
		got[idx] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit hashes: %w", err)
	}
	return store.AuditHashesInOrder(indexes, got)
}

func scanAudit(row scanner) (*store.AuditRecord, error) {
	var (
		r    store.AuditRecord
		t    int64
		data string
	)
	if err := row.Scan(&r.Index, &t, &r.Event, &r.Outcome, &r.ActorRole, &r.ActorID, &r.Citizen, &r.Portal,
		&r.KeyID, &r.RequestID, &r.Documents, &data); err != nil {
		return nil, err
	}
	r.Time = time.Unix(0, t).UTC()
	r.Data = []byte(data)
	return &r, nil
}

// AuditRecords returns records in [from, to) by index.
func (s *DB) AuditRecords(ctx context.Context, from, to int64) ([]*store.AuditRecord, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+auditColumns+" FROM audit_records WHERE idx >= $1 AND idx < $2 ORDER BY idx", from, to)
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	return out, nil
}

// QueryAudit returns the records matching f.
func (s *DB) QueryAudit(ctx context.Context, f store.AuditFilter) ([]*store.AuditRecord, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + auditColumns + " FROM audit_records WHERE idx >= $1"
	args := []any{f.Start}
	for _, c := range []struct{ col, v string }{{"citizen", f.Citizen}, {"portal", f.Portal}, {"key_id", f.KeyID}} {
		if c.v != "" {
			args = append(args, c.v)
			q += fmt.Sprintf(" AND %s = $%d", c.col, len(args))
		}
	}
	if len(f.Events) > 0 {
		args = append(args, f.Events)
		q += fmt.Sprintf(" AND event = ANY($%d)", len(args))
	}
	if !f.From.IsZero() {
		args = append(args, f.From.UnixNano())
		q += fmt.Sprintf(" AND time >= $%d", len(args))
	}
	if !f.To.IsZero() {
		args = append(args, f.To.UnixNano())
		q += fmt.Sprintf(" AND time < $%d", len(args))
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY idx LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

// AddAuditCheckpoint stores a signed checkpoint.
func (s *DB) AddAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO audit_checkpoints (size, note, timestamp, created_at) VALUES ($1, $2, $3, $4)",
		c.Size, c.Note, c.Timestamp, c.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("add audit checkpoint %d: %w", c.Size, conflict(err))
	}
	return nil
}

func scanCheckpoint(row scanner) (*store.AuditCheckpoint, error) {
	var (
		c  store.AuditCheckpoint
		at int64
	)
	if err := row.Scan(&c.Size, &c.Note, &c.Timestamp, &at); err != nil {
		return nil, err
	}
	c.CreatedAt = time.Unix(0, at).UTC()
	return &c, nil
}

// AuditCheckpoints lists checkpoints larger than after.
func (s *DB) AuditCheckpoints(ctx context.Context, after int64, limit int) ([]*store.AuditCheckpoint, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, "SELECT size, note, timestamp, created_at FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	out, err := collect(rows, scanCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	return out, nil
}

// LatestAuditCheckpoint returns the largest checkpoint.
func (s *DB) LatestAuditCheckpoint(ctx context.Context) (*store.AuditCheckpoint, error) {
	c, err := scanCheckpoint(s.pool.QueryRow(ctx, "SELECT size, note, timestamp, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1"))
	if err != nil {
		return nil, fmt.Errorf("latest audit checkpoint: %w", notFound(err))
	}
	return c, nil
}

// AuditKeyUsage summarises key.used records per citizen, portal and key.
func (s *DB) AuditKeyUsage(ctx context.Context, citizen, portal string, from, to time.Time) ([]*store.AuditUsage, error) {
	q := `SELECT citizen, portal, key_id,
		COUNT(*) FILTER (WHERE outcome = 'success'),
		COUNT(*) FILTER (WHERE outcome <> 'success'),
		COALESCE(SUM(documents) FILTER (WHERE outcome = 'success'), 0),
		MIN(time), MAX(time)
		FROM audit_records WHERE event = 'key.used'`
	var args []any
	if citizen != "" {
		args = append(args, citizen)
		q += fmt.Sprintf(" AND citizen = $%d", len(args))
	}
	if portal != "" {
		args = append(args, portal)
		q += fmt.Sprintf(" AND portal = $%d", len(args))
	}
	if !from.IsZero() {
		args = append(args, from.UnixNano())
		q += fmt.Sprintf(" AND time >= $%d", len(args))
	}
	if !to.IsZero() {
		args = append(args, to.UnixNano())
		q += fmt.Sprintf(" AND time < $%d", len(args))
	}
	q += " GROUP BY citizen, portal, key_id ORDER BY citizen, portal, key_id"
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit key usage: %w", err)
	}
	out, err := collect(rows, func(row scanner) (*store.AuditUsage, error) {
		var (
			u           store.AuditUsage
			first, last int64
		)
		if err := row.Scan(&u.Citizen, &u.Portal, &u.KeyID, &u.Signatures, &u.Failures, &u.Documents, &first, &last); err != nil {
			return nil, err
		}
		u.First, u.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		return &u, nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit key usage: %w", err)
	}
	return out, nil
}

// AuditCursor returns a log reader's saved position.
func (s *DB) AuditCursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.pool.QueryRow(ctx, "SELECT position FROM audit_cursors WHERE name = $1", name).Scan(&pos)
	if notFound(err) == store.ErrNotFound {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit cursor %s: %w", name, err)
	}
	return pos, nil
}

// SetAuditCursor saves a log reader's position.
func (s *DB) SetAuditCursor(ctx context.Context, name string, position int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_cursors (name, position, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
		name, position, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("set audit cursor %s: %w", name, err)
	}
	return nil
}
