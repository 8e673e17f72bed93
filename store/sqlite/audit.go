package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.AuditStore = (*DB)(nil)

// AppendAudit stores a batch of audit records and their tree hashes in one
// transaction.
//
// The database runs WAL with synchronous=NORMAL: a commit is in the WAL, so
// it survives a killed process, but the WAL is fsynced only at checkpoints.
// With flush the transaction runs with synchronous=FULL, which fsyncs the
// WAL at commit and survives a power cut too; group commit in package audit
// keeps that to one fsync a batch.
//
// Appends run on one connection held for the purpose, with its statements
// prepared once: compiling a multi-row INSERT and taking a connection from
// the pool cost more than the rows of a small batch (issue 6 wants audit
// on at 0.9x of audit off).
func (s *DB) AppendAudit(ctx context.Context, recs []*store.AuditRecord, hashes []store.AuditHash, flush bool) error {
	if len(recs) == 0 {
		return nil
	}
	for i, r := range recs {
		if r.Index != recs[0].Index+int64(i) {
			return fmt.Errorf("append audit: record %d out of sequence: %w", r.Index, store.ErrConflict)
		}
	}
	if s.journal != nil {
		return s.journal.append(recs, hashes, flush)
	}
	if err := s.lockAudit(false); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return s.appendTables(ctx, recs, hashes, flush)
}

// appendTables writes records and their hashes into the tables in one
// transaction: every append without a journal, every move with one.
func (s *DB) appendTables(ctx context.Context, recs []*store.AuditRecord, hashes []store.AuditHash, flush bool) error {
	w := &s.audit
	w.mu.Lock()
	defer w.mu.Unlock()
	// The audit writer has a connection of its own; it still writes
	// one at a time with the rest of the handle (gate.go).
	if err := s.acquire(ctx); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	defer s.gate.Release(1)
	err := w.append(ctx, s.db, recs, hashes, flush)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		// The connection may be broken or mid-transaction: start afresh.
		w.reset()
	}
	return err
}

// auditWriter holds the connection audit appends run on. Its mutex orders
// appenders of one process (the audit committer, and tests that run two).
type auditWriter struct {
	mu    sync.Mutex
	conn  *sql.Conn
	sync  string               // the connection's synchronous mode
	stmts map[string]*sql.Stmt // by query
}

// auditChunks are the row counts statements are prepared for; a batch is
// cut greedily into them, so at most a handful of statements exist and a
// batch of any size runs without compiling one.
var auditChunks = []int{256, 64, 16, 4, 1}

// auditInserts are the INSERTs of records and of their hashes for each of
// auditChunks, built once rather than on every commit.
var auditInserts = func() map[int]struct{ records, hashes string } {
	m := map[int]struct{ records, hashes string }{}
	for _, n := range auditChunks {
		m[n] = struct{ records, hashes string }{
			"INSERT INTO audit_records (" + auditColumns + ") VALUES " + rowsOf(12, n),
			"INSERT INTO audit_hashes (idx, hash) VALUES " + rowsOf(2, n),
		}
	}
	return m
}()

func (w *auditWriter) append(ctx context.Context, db *sql.DB, recs []*store.AuditRecord, hashes []store.AuditHash, flush bool) error {
	if w.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		w.conn, w.sync, w.stmts = conn, "", map[string]*sql.Stmt{}
	}
	mode := "NORMAL"
	if flush {
		mode = "FULL"
	}
	if w.sync != mode {
		if _, err := w.conn.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		w.sync = mode
	}
	// BEGIN and COMMIT as statements: database/sql re-prepares a
	// connection's statements inside a *sql.Tx, which is the cost this
	// writer is here to avoid.
	if err := w.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if err := w.insert(ctx, recs, hashes); err != nil {
		if rerr := w.exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			w.reset()
		}
		return err
	}
	if err := w.exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

func (w *auditWriter) insert(ctx context.Context, recs []*store.AuditRecord, hashes []store.AuditHash) error {
	var size, indexed int64
	st, err := w.stmt(ctx, "SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records), (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_index)")
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if err := st.QueryRowContext(ctx).Scan(&size, &indexed); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if recs[0].Index != size {
		return fmt.Errorf("append audit at %d, log size %d: %w", recs[0].Index, size, store.ErrConflict)
	}
	args := make([]any, 0, 12*min(len(recs), auditChunks[0]))
	for from := 0; from < len(recs); {
		n := chunk(len(recs) - from)
		part := recs[from : from+n]
		args = args[:0]
		for _, r := range part {
			args = append(args, r.Index, r.Time.UnixNano(), r.Event, r.Outcome, r.ActorRole, r.ActorID,
				r.Citizen, r.Portal, r.KeyID, r.RequestID, r.Documents, string(r.Data))
		}
		if err := w.exec(ctx, auditInserts[n].records, args...); err != nil {
			return fmt.Errorf("append audit records %d-%d: %w", part[0].Index, part[n-1].Index, conflict(err))
		}
		from += n
	}
	for from := 0; from < len(hashes); {
		n := chunk(len(hashes) - from)
		args = args[:0]
		for _, h := range hashes[from : from+n] {
			args = append(args, h.Index, h.Hash[:])
		}
		if err := w.exec(ctx, auditInserts[n].hashes, args...); err != nil {
			return fmt.Errorf("append audit hashes from %d: %w", hashes[from].Index, conflict(err))
		}
		from += n
	}
	return w.index(ctx, indexed, size+int64(len(recs)))
}

// auditIndexLag is how many records may wait unindexed at the log's tail
// before an append copies them into audit_index: queries scan at most this
// many (plus one batch) records without an index, and the index's pages are
// written once per lag, not once per commit.
var auditIndexLag int64 = 512

// index copies the records from audit_index's end up to end into it, once
// auditIndexLag of them are waiting.
func (w *auditWriter) index(ctx context.Context, indexed, end int64) error {
	if end-indexed < auditIndexLag {
		return nil
	}
	if _, err := w.conn.ExecContext(ctx, `INSERT INTO audit_index (idx, time, event, outcome, citizen, portal, key_id, documents)
		SELECT idx, time, event, outcome, citizen, portal, key_id, documents FROM audit_records WHERE idx >= ?`, indexed); err != nil {
		return fmt.Errorf("append audit: index from %d: %w", indexed, err)
	}
	return nil
}

// indexedTo returns where audit_index ends: records below it are indexed,
// the rest are the tail that queries scan.
func (s *DB) indexedTo(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_index").Scan(&n)
	return n, err
}

func chunk(n int) int {
	for _, c := range auditChunks {
		if c <= n {
			return c
		}
	}
	return 1
}

// stmt returns q prepared on the held connection, preparing it the first
// time: the appender runs a handful of fixed statements (auditChunks keeps
// the INSERTs few).
func (w *auditWriter) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := w.stmts[q]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = st
	return st, nil
}

func (w *auditWriter) exec(ctx context.Context, q string, args ...any) error {
	st, err := w.stmt(ctx, q)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// reset drops the held connection; the next append takes a new one.
func (w *auditWriter) reset() {
	for _, st := range w.stmts {
		st.Close()
	}
	if w.conn != nil {
		w.conn.Close()
	}
	w.conn, w.stmts, w.sync = nil, nil, ""
}

func (w *auditWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reset()
}

// rowsOf returns "(?, ?), (?, ?)" for rows rows of cols columns.
func rowsOf(cols, rows int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, rows-1)
}

func conflict(err error) error {
	if uniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

// AuditSize returns the number of audit records, those still in this
// handle's journal included.
func (s *DB) AuditSize(ctx context.Context) (int64, error) {
	if s.journal != nil {
		return s.journal.size()
	}
	return s.tableSize(ctx)
}

// settle moves what waits in this handle's journal into the tables, so
// that a read sees every record appended through the handle.
func (s *DB) settle(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	return s.journal.move(ctx)
}

// tableSize returns the number of audit records in the tables.
func (s *DB) tableSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_records").Scan(&n); err != nil {
		return 0, fmt.Errorf("audit size: %w", err)
	}
	return n, nil
}

// AuditHashes returns stored tree hashes by index.
func (s *DB) AuditHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if err := s.settle(ctx); err != nil {
		return nil, fmt.Errorf("audit hashes: %w", err)
	}
	if len(indexes) == 0 {
		return [][32]byte{}, nil
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
	return store.AuditHashesInOrder(indexes, got)
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
	if err := s.settle(ctx); err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
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

// QueryAudit returns the records matching f: through audit_index below its
// end, then from the unindexed tail.
func (s *DB) QueryAudit(ctx context.Context, f store.AuditFilter) ([]*store.AuditRecord, error) {
	if err := s.settle(ctx); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	w, err := s.indexedTo(ctx)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	var out []*store.AuditRecord
	if f.Start < w {
		cond, args := auditFilter("i.", f)
		q := "SELECT " + prefixed("r.", auditColumns) + " FROM audit_index i JOIN audit_records r ON r.idx = i.idx" +
			" WHERE i.idx >= ? AND i.idx < ?" + cond + " ORDER BY i.idx LIMIT ?"
		rows, err := s.db.QueryContext(ctx, q, append(append([]any{f.Start, w}, args...), limit)...)
		if err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		if out, err = scanAudit(rows); err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
	}
	if len(out) == limit {
		return out, nil
	}
	cond, args := auditFilter("", f)
	q := "SELECT " + auditColumns + " FROM audit_records WHERE idx >= ?" + cond + " ORDER BY idx LIMIT ?"
	rows, err := s.db.QueryContext(ctx, q, append(append([]any{max(f.Start, w)}, args...), limit-len(out))...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	tail, err := scanAudit(rows)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return append(out, tail...), nil
}

// auditFilter returns the conditions of f other than its start, on the
// columns of a table named by prefix, and their arguments.
func auditFilter(prefix string, f store.AuditFilter) (string, []any) {
	var (
		q    string
		args []any
	)
	for _, c := range []struct{ col, v string }{{"citizen", f.Citizen}, {"portal", f.Portal}, {"key_id", f.KeyID}} {
		if c.v != "" {
			q += " AND " + prefix + c.col + " = ?"
			args = append(args, c.v)
		}
	}
	if len(f.Events) > 0 {
		q += " AND " + prefix + "event IN (?" + strings.Repeat(", ?", len(f.Events)-1) + ")"
		for _, e := range f.Events {
			args = append(args, e)
		}
	}
	if !f.From.IsZero() {
		q += " AND " + prefix + "time >= ?"
		args = append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		q += " AND " + prefix + "time < ?"
		args = append(args, f.To.UnixNano())
	}
	return q, args
}

// prefixed qualifies each of a comma-separated list of columns.
func prefixed(prefix, cols string) string {
	return prefix + strings.ReplaceAll(cols, ", ", ", "+prefix)
}

// AddAuditCheckpoint stores a signed checkpoint.
func (s *DB) AddAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	// Records before checkpoints: a reader of the tables never sees a
	// checkpoint over records still in the journal.
	if err := s.settle(ctx); err != nil {
		return fmt.Errorf("add audit checkpoint %d: %w", c.Size, err)
	}
	_, err := s.write(ctx, "INSERT INTO audit_checkpoints (size, note, timestamp, created_at) VALUES (?, ?, ?, ?)",
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

// AuditKeyUsage summarises key.used records per citizen, portal and key,
// from audit_index and the unindexed tail.
func (s *DB) AuditKeyUsage(ctx context.Context, citizen, portal string, from, to time.Time) ([]*store.AuditUsage, error) {
	if err := s.settle(ctx); err != nil {
		return nil, fmt.Errorf("audit key usage: %w", err)
	}
	w, err := s.indexedTo(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit key usage: %w", err)
	}
	cond := " AND event = 'key.used'"
	var args []any
	if citizen != "" {
		cond += " AND citizen = ?"
		args = append(args, citizen)
	}
	if portal != "" {
		cond += " AND portal = ?"
		args = append(args, portal)
	}
	if !from.IsZero() {
		cond += " AND time >= ?"
		args = append(args, from.UnixNano())
	}
	if !to.IsZero() {
		cond += " AND time < ?"
		args = append(args, to.UnixNano())
	}
	const cols = "citizen, portal, key_id, outcome, documents, time"
	q := `SELECT citizen, portal, key_id,
		SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END),
		SUM(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END),
		SUM(CASE WHEN outcome = 'success' THEN documents ELSE 0 END),
		MIN(time), MAX(time)
		FROM (SELECT ` + cols + ` FROM audit_index WHERE idx < ?` + cond + `
			UNION ALL SELECT ` + cols + ` FROM audit_records WHERE idx >= ?` + cond + `)
		GROUP BY citizen, portal, key_id ORDER BY citizen, portal, key_id`
	args = append(append(append([]any{w}, args...), w), args...)
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
		if _, cerr := s.write(ctx, auditCursorsTable); cerr != nil {
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
		_, err := s.write(ctx, `INSERT INTO audit_cursors (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
			name, position, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("set audit cursor %s: %w", name, err)
	}
	return nil
}
