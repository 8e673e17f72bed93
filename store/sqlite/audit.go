package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.AuditStore = (*DB)(nil)

// AppendAudit stores a batch of audit records and their tree hashes in one
// transaction.
//
// The database runs WAL with synchronous=NORMAL: a commit is in the WAL, so
// it survives a killed process, but the WAL is fsynced only at checkpoints.
// With flush the transaction runs on a connection switched to
// synchronous=FULL, which fsyncs the WAL at commit and survives a power
// cut too; group commit in package audit keeps that to one fsync a batch.
func (s *DB) AppendAudit(ctx context.Context, recs []*store.AuditRecord, hashes []store.AuditHash, flush bool) error {
	if len(recs) == 0 {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	defer conn.Close()
	mode := "NORMAL"
	if flush {
		mode = "FULL"
	}
	// Set every time: the pool may hand back a connection another append
	// switched.
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	defer tx.Rollback()
	var size int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records").Scan(&size); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if recs[0].Index != size {
		return fmt.Errorf("append audit at %d, log size %d: %w", recs[0].Index, size, store.ErrConflict)
	}
	// Multi-row INSERTs, a few hundred rows each: per-statement overhead,
	// not the rows, is most of the cost of a small record.
	for i, r := range recs {
		if r.Index != size+int64(i) {
			return fmt.Errorf("append audit: record %d out of sequence: %w", r.Index, store.ErrConflict)
		}
	}
	for from := 0; from < len(recs); from += auditRowsPerInsert {
		part := recs[from:min(from+auditRowsPerInsert, len(recs))]
		args := make([]any, 0, 12*len(part))
		for _, r := range part {
			args = append(args, r.Index, r.Time.UnixNano(), r.Event, r.Outcome, r.ActorRole, r.ActorID,
				r.Citizen, r.Portal, r.KeyID, r.RequestID, r.Documents, string(r.Data))
		}
		q := "INSERT INTO audit_records (" + auditColumns + ") VALUES " + rowsOf(12, len(part))
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("append audit records %d-%d: %w", part[0].Index, part[len(part)-1].Index, conflict(err))
		}
	}
	for from := 0; from < len(hashes); from += auditRowsPerInsert {
		part := hashes[from:min(from+auditRowsPerInsert, len(hashes))]
		args := make([]any, 0, 2*len(part))
		for _, h := range part {
			args = append(args, h.Index, h.Hash[:])
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit_hashes (idx, hash) VALUES "+rowsOf(2, len(part)), args...); err != nil {
			return fmt.Errorf("append audit hashes from %d: %w", part[0].Index, conflict(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// auditRowsPerInsert keeps a statement's parameters (12 a record) well
// under SQLite's limit.
const auditRowsPerInsert = 256

// rowsOf returns "(?, ?), (?, ?)" for rows rows of cols columns.
func rowsOf(cols, rows int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, rows-1)
}

func conflict(err error) error {
	if strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return store.ErrConflict
	}
	return err
}

// AuditSize returns the number of audit records.
func (s *DB) AuditSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records").Scan(&n); err != nil {
		return 0, fmt.Errorf("audit size: %w", err)
	}
	return n, nil
}

// AuditHashes returns stored tree hashes by index.
func (s *DB) AuditHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	out := make([][32]byte, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	// One query for the lot: proofs and tree hashes ask for ~log2(n)
	// hashes at a time.
	args := make([]any, len(indexes))
	for i, x := range indexes {
		args[i] = x
	}
	q := "SELECT idx, hash FROM audit_hashes WHERE idx IN (?" + strings.Repeat(", ?", len(indexes)-1) + ")"
	rows, err := s.db.QueryContext(ctx, q, args...)
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
	for i, x := range indexes {
		h, ok := got[x]
		if !ok || len(h) != 32 {
			return nil, fmt.Errorf("audit hash %d: %w", x, store.ErrNotFound)
		}
		copy(out[i][:], h)
	}
	return out, nil
}

const auditColumns = "idx, time, event, outcome, actor_role, actor_id, citizen, portal, key_id, request_id, documents, data"

func scanAudit(rows *sql.Rows) ([]*store.AuditRecord, error) {
	defer rows.Close()
	var out []*store.AuditRecord
	for rows.Next() {
		var (
			r    store.AuditRecord
			t    int64
			data string
		)
		if err := rows.Scan(&r.Index, &t, &r.Event, &r.Outcome, &r.ActorRole, &r.ActorID, &r.Citizen, &r.Portal,
			&r.KeyID, &r.RequestID, &r.Documents, &data); err != nil {
			return nil, err
		}
		r.Time = time.Unix(0, t).UTC()
		r.Data = []byte(data)
		out = append(out, &r)
	}
	return out, rows.Err()
}

// AuditRecords returns records in [from, to) by index.
func (s *DB) AuditRecords(ctx context.Context, from, to int64) ([]*store.AuditRecord, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit_records WHERE idx >= ? AND idx < ? ORDER BY idx", from, to)
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	out, err := scanAudit(rows)
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
	q := "SELECT " + auditColumns + " FROM audit_records WHERE idx >= ?"
	args := []any{f.Start}
	for _, c := range []struct{ col, v string }{{"citizen", f.Citizen}, {"portal", f.Portal}, {"key_id", f.KeyID}} {
		if c.v != "" {
			q += " AND " + c.col + " = ?"
			args = append(args, c.v)
		}
	}
	if len(f.Events) > 0 {
		q += " AND event IN (?" + strings.Repeat(", ?", len(f.Events)-1) + ")"
		for _, e := range f.Events {
			args = append(args, e)
		}
	}
	if !f.From.IsZero() {
		q += " AND time >= ?"
		args = append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		q += " AND time < ?"
		args = append(args, f.To.UnixNano())
	}
	q += " ORDER BY idx LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	out, err := scanAudit(rows)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return out, nil
}

// AddAuditCheckpoint stores a signed checkpoint.
func (s *DB) AddAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO audit_checkpoints (size, note, timestamp, created_at) VALUES (?, ?, ?, ?)",
		c.Size, c.Note, c.Timestamp, c.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("add audit checkpoint %d: %w", c.Size, conflict(err))
	}
	return nil
}

func scanCheckpoints(rows *sql.Rows) ([]*store.AuditCheckpoint, error) {
	defer rows.Close()
	var out []*store.AuditCheckpoint
	for rows.Next() {
		var (
			c  store.AuditCheckpoint
			at int64
		)
		if err := rows.Scan(&c.Size, &c.Note, &c.Timestamp, &at); err != nil {
			return nil, err
		}
		c.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, &c)
	}
	return out, rows.Err()
}

// AuditCheckpoints lists checkpoints larger than after.
func (s *DB) AuditCheckpoints(ctx context.Context, after int64, limit int) ([]*store.AuditCheckpoint, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, "SELECT size, note, timestamp, created_at FROM audit_checkpoints WHERE size > ? ORDER BY size LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	out, err := scanCheckpoints(rows)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	return out, nil
}

// LatestAuditCheckpoint returns the largest checkpoint.
func (s *DB) LatestAuditCheckpoint(ctx context.Context) (*store.AuditCheckpoint, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT size, note, timestamp, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
	if err != nil {
		return nil, fmt.Errorf("latest audit checkpoint: %w", err)
	}
	out, err := scanCheckpoints(rows)
	if err != nil {
		return nil, fmt.Errorf("latest audit checkpoint: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("latest audit checkpoint: %w", store.ErrNotFound)
	}
	return out[0], nil
}

// AuditKeyUsage summarises key.used records per citizen, portal and key.
func (s *DB) AuditKeyUsage(ctx context.Context, citizen, portal string, from, to time.Time) ([]*store.AuditUsage, error) {
	q := `SELECT citizen, portal, key_id,
		SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END),
		SUM(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END),
		SUM(CASE WHEN outcome = 'success' THEN documents ELSE 0 END),
		MIN(time), MAX(time)
		FROM audit_records WHERE event = 'key.used'`
	var args []any
	if citizen != "" {
		q += " AND citizen = ?"
		args = append(args, citizen)
	}
	if portal != "" {
		q += " AND portal = ?"
		args = append(args, portal)
	}
	if !from.IsZero() {
		q += " AND time >= ?"
		args = append(args, from.UnixNano())
	}
	if !to.IsZero() {
		q += " AND time < ?"
		args = append(args, to.UnixNano())
	}
	q += " GROUP BY citizen, portal, key_id ORDER BY citizen, portal, key_id"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit key usage: %w", err)
	}
	defer rows.Close()
	var out []*store.AuditUsage
	for rows.Next() {
		var (
			u           store.AuditUsage
			first, last int64
		)
		if err := rows.Scan(&u.Citizen, &u.Portal, &u.KeyID, &u.Signatures, &u.Failures, &u.Documents, &first, &last); err != nil {
			return nil, fmt.Errorf("audit key usage: %w", err)
		}
		u.First, u.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, &u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit key usage: %w", err)
	}
	return out, nil
}

// auditCursorsTable is in migration 0005 now; databases that applied an
// earlier 0005 during development get it on first use.
const auditCursorsTable = `CREATE TABLE IF NOT EXISTS audit_cursors (
	name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at INTEGER NOT NULL)`

func (s *DB) withCursors(ctx context.Context, fn func() error) error {
	err := fn()
	if err != nil && strings.Contains(err.Error(), "no such table: audit_cursors") {
		if _, cerr := s.db.ExecContext(ctx, auditCursorsTable); cerr != nil {
			return cerr
		}
		err = fn()
	}
	return err
}

// AuditCursor returns a log reader's saved position.
func (s *DB) AuditCursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.withCursors(ctx, func() error {
		return s.db.QueryRowContext(ctx, "SELECT position FROM audit_cursors WHERE name = ?", name).Scan(&pos)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit cursor %s: %w", name, err)
	}
	return pos, nil
}

// SetAuditCursor saves a log reader's position.
func (s *DB) SetAuditCursor(ctx context.Context, name string, position int64) error {
	err := s.withCursors(ctx, func() error {
		_, err := s.db.ExecContext(ctx, `INSERT INTO audit_cursors (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
			name, position, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("set audit cursor %s: %w", name, err)
	}
	return nil
}
