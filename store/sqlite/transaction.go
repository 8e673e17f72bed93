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

var _ store.TransactionStore = (*DB)(nil)

// txNano stores a time as Unix nanoseconds, NULL for the zero time.
func txNano(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func txTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

const txColumns = `id, portal_id, citizen_id, state, stop_on_error, level, ok_url, error_url, idempotency_key, request_hash,
	approval_digest, session_hash, otp_hash, otp_expires_at, otp_sends, otp_sent_at, otp_tries, certificate_id, key_id,
	summary, error_code, error_message, created_at, updated_at, expires_at, authenticated_at, approved_at, ended_at,
	callback_state, callback_attempts, callback_next_at, callback_error, version`

func txArgs(t *store.Transaction) []any {
	approval := t.ApprovalDigest
	if approval == nil {
		approval = []byte{} // an open batch has none yet; the column is NOT NULL
	}
	return []any{t.ID, t.PortalID, t.CitizenID, t.State, t.StopOnError, t.Level, t.OKURL, t.ErrorURL, t.IdempotencyKey, nullBytes(t.RequestHash),
		approval, nullBytes(t.SessionHash), nullBytes(t.OTPHash), txNano(t.OTPExpiresAt), t.OTPSends, txNano(t.OTPSentAt), t.OTPTries,
		t.CertificateID, t.KeyID, t.Summary, t.ErrorCode, t.ErrorMessage, t.CreatedAt.UnixNano(), t.UpdatedAt.UnixNano(), t.ExpiresAt.UnixNano(),
		txNano(t.AuthenticatedAt), txNano(t.ApprovedAt), txNano(t.EndedAt), t.CallbackState, t.CallbackAttempts, txNano(t.CallbackNextAt),
		t.CallbackError, t.Version}
}

func scanTx(row interface{ Scan(...any) error }) (*store.Transaction, error) {
	var (
		t                                                  store.Transaction
		otpExp, otpSent, created, updated, expires, authAt sql.NullInt64
		approved, ended, cbNext                            sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.PortalID, &t.CitizenID, &t.State, &t.StopOnError, &t.Level, &t.OKURL, &t.ErrorURL, &t.IdempotencyKey,
		&t.RequestHash, &t.ApprovalDigest, &t.SessionHash, &t.OTPHash, &otpExp, &t.OTPSends, &otpSent, &t.OTPTries, &t.CertificateID,
		&t.KeyID, &t.Summary, &t.ErrorCode, &t.ErrorMessage, &created, &updated, &expires, &authAt, &approved, &ended,
		&t.CallbackState, &t.CallbackAttempts, &cbNext, &t.CallbackError, &t.Version); err != nil {
		return nil, err
	}
	t.OTPExpiresAt, t.OTPSentAt = txTime(otpExp), txTime(otpSent)
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = txTime(created), txTime(updated), txTime(expires)
	t.AuthenticatedAt, t.ApprovedAt, t.EndedAt, t.CallbackNextAt = txTime(authAt), txTime(approved), txTime(ended), txTime(cbNext)
	return &t, nil
}

// CreateTransaction inserts the transaction and its documents. The rate
// check and the insert share one write transaction (SQLite's immediate
// lock), so concurrent creations on any number of connections cannot both
// take the last slot of the minute.
func (s *DB) CreateTransaction(ctx context.Context, t *store.Transaction, docs []*store.Document, ratePerMin int) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("create transaction: %w", err)
	}
	defer done()
	if ratePerMin > 0 {
		var n int
		// No upper bound: a row stamped later by a node whose clock runs
		// ahead still counts.
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM transactions WHERE portal_id = ? AND created_at > ?",
			t.PortalID, t.CreatedAt.Add(-time.Minute).UnixNano()).Scan(&n); err != nil {
			return fmt.Errorf("create transaction: rate: %w", err)
		}
		if n >= ratePerMin {
			return fmt.Errorf("portal %s: %d in the last minute: %w", t.PortalID, n, store.ErrRateLimited)
		}
	}
	if t.Version == 0 {
		t.Version = 1
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO transactions ("+txColumns+") VALUES (?"+strings.Repeat(", ?", 32)+")", txArgs(t)...)
	if txUnique(err) {
		return fmt.Errorf("create transaction %s: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create transaction %s: %w", t.ID, err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO transaction_documents (transaction_id, idx, name, media_type, format, hash, digest,
		content, size, status, error_code, error, result, timestamped, signed_at, sign_options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("create transaction %s: %w", t.ID, err)
	}
	defer ins.Close()
	for _, d := range docs {
		if _, err := ins.ExecContext(ctx, t.ID, d.Index, d.Name, d.MediaType, d.Format, d.Hash, d.Digest, nullBytes(d.Content), d.Size,
			d.Status, d.ErrorCode, d.Error, nullBytes(d.Result), d.Timestamped, txNano(d.SignedAt), nullBytes(d.SignOptions)); err != nil {
			return fmt.Errorf("create transaction %s: document %d: %w", t.ID, d.Index, err)
		}
		if err := insertAppearance(ctx, tx, t.ID, d); err != nil {
			return fmt.Errorf("create transaction %s: document %d: %w", t.ID, d.Index, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create transaction %s: %w", t.ID, err)
	}
	return nil
}

// Transaction returns a transaction by ID.
func (s *DB) Transaction(ctx context.Context, id string) (*store.Transaction, error) {
	t, err := scanTx(s.queryRow(ctx, "SELECT "+txColumns+" FROM transactions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("transaction %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", id, err)
	}
	return t, nil
}

// TransactionByIdempotencyKey returns the portal's transaction created with key.
func (s *DB) TransactionByIdempotencyKey(ctx context.Context, portalID, key string) (*store.Transaction, error) {
	t, err := scanTx(s.db.QueryRowContext(ctx, "SELECT "+txColumns+" FROM transactions WHERE portal_id = ? AND idempotency_key = ? AND idempotency_key <> ''",
		portalID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("transaction with idempotency key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("transaction with idempotency key: %w", err)
	}
	return t, nil
}

// Transactions lists transactions ordered by ID.
func (s *DB) Transactions(ctx context.Context, f store.TransactionFilter) ([]*store.Transaction, error) {
	q := "SELECT " + txColumns + " FROM transactions WHERE id > ?"
	args := []any{f.After}
	if f.PortalID != "" {
		q += " AND portal_id = ?"
		args = append(args, f.PortalID)
	}
	if f.CitizenID != "" {
		q += " AND citizen_id = ?"
		args = append(args, f.CitizenID)
	}
	if f.State != "" {
		q += " AND state = ?"
		args = append(args, f.State)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY id LIMIT ?"
	return s.queryTx(ctx, q, append(args, limit)...)
}

func (s *DB) queryTx(ctx context.Context, q string, args ...any) ([]*store.Transaction, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	defer rows.Close()
	var out []*store.Transaction
	for rows.Next() {
		t, err := scanTx(rows)
		if err != nil {
			return nil, fmt.Errorf("list transactions: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	return out, nil
}

// UpdateTransaction stores t if nobody updated it since it was read.
func (s *DB) UpdateTransaction(ctx context.Context, t *store.Transaction) error {
	args := txArgs(t)
	// Every column but id, portal, citizen, creation data and version.
	res, err := s.exec(ctx, `UPDATE transactions SET state = ?, approval_digest = ?, session_hash = ?, otp_hash = ?, otp_expires_at = ?, otp_sends = ?,
		otp_sent_at = ?, otp_tries = ?, certificate_id = ?, key_id = ?, summary = ?, error_code = ?, error_message = ?, updated_at = ?,
		expires_at = ?, authenticated_at = ?, approved_at = ?, ended_at = ?, callback_state = ?, callback_attempts = ?,
		callback_next_at = ?, callback_error = ?, version = version + 1
		WHERE id = ? AND version = ?`,
		t.State, args[10], args[11], args[12], args[13], t.OTPSends, args[15], t.OTPTries, t.CertificateID, t.KeyID, t.Summary, t.ErrorCode,
		t.ErrorMessage, t.UpdatedAt.UnixNano(), t.ExpiresAt.UnixNano(), args[25], args[26], args[27], t.CallbackState, t.CallbackAttempts,
		args[30], t.CallbackError, t.ID, t.Version)
	if err != nil {
		return fmt.Errorf("update transaction %s: %w", t.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update transaction %s: %w", t.ID, err)
	}
	if n == 0 {
		var v int64
		err := s.db.QueryRowContext(ctx, "SELECT version FROM transactions WHERE id = ?", t.ID).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("transaction %s: %w", t.ID, store.ErrNotFound)
		}
		return fmt.Errorf("update transaction %s: version %d is stale: %w", t.ID, t.Version, store.ErrConflict)
	}
	t.Version++
	return nil
}

// AddDocument inserts a document into a draft batch, bumping the
// batch's version in the same transaction so that concurrent adds
// serialise.
func (s *DB) AddDocument(ctx context.Context, t *store.Transaction, d *store.Document) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("add document: %w", err)
	}
	defer done()
	if err := s.addDocument(ctx, tx, t, d); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add document to %s: %w", t.ID, err)
	}
	t.Version++
	return nil
}

// addDocument is AddDocument's writes inside tx, which the caller
// commits; t.Version is left as read.
func (s *DB) addDocument(ctx context.Context, tx *sql.Tx, t *store.Transaction, d *store.Document) error {
	res, err := s.txExec(ctx, tx, "UPDATE transactions SET version = version + 1, updated_at = ? WHERE id = ? AND version = ? AND state = 'draft'",
		t.UpdatedAt.UnixNano(), t.ID, t.Version)
	if err != nil {
		return fmt.Errorf("add document to %s: %w", t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("add document to %s: %w", t.ID, err)
	} else if n == 0 {
		return fmt.Errorf("add document to %s: %w", t.ID, store.ErrConflict)
	}
	_, err = s.txExec(ctx, tx, `INSERT INTO transaction_documents (transaction_id, idx, name, media_type, format, hash, digest,
		content, size, status, sign_options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, d.Index, d.Name, d.MediaType, d.Format, d.Hash, d.Digest, nullBytes(d.Content), d.Size, d.Status, nullBytes(d.SignOptions))
	if txUnique(err) {
		return fmt.Errorf("add document %d to %s: %w", d.Index, t.ID, store.ErrConflict)
	}
	if err == nil {
		err = insertAppearance(ctx, tx, t.ID, d)
	}
	if err != nil {
		return fmt.Errorf("add document to %s: %w", t.ID, err)
	}
	return nil
}

const docColumns = "transaction_id, idx, name, media_type, format, hash, digest, size, status, error_code, error, timestamped, signed_at, timestamped_at"

// Documents lists a transaction's documents in order.
func (s *DB) Documents(ctx context.Context, txID string, full bool) ([]*store.Document, error) {
	cols := docColumns
	if full {
		cols += ", content, result, timestamp_token, sign_options"
	}
	st, err := s.prepared(ctx, "SELECT "+cols+" FROM transaction_documents WHERE transaction_id = ? ORDER BY idx")
	if err != nil {
		return nil, fmt.Errorf("documents of %s: %w", txID, err)
	}
	rows, err := st.QueryContext(ctx, txID)
	if err != nil {
		return nil, fmt.Errorf("documents of %s: %w", txID, err)
	}
	defer rows.Close()
	var out []*store.Document
	for rows.Next() {
		var (
			d                   store.Document
			signed, timestamped sql.NullInt64
		)
		dst := []any{&d.TransactionID, &d.Index, &d.Name, &d.MediaType, &d.Format, &d.Hash, &d.Digest, &d.Size, &d.Status, &d.ErrorCode,
			&d.Error, &d.Timestamped, &signed, &timestamped}
		if full {
			dst = append(dst, &d.Content, &d.Result, &d.TimestampToken, &d.SignOptions)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("documents of %s: %w", txID, err)
		}
		d.SignedAt, d.TimestampedAt = txTime(signed), txTime(timestamped)
		out = append(out, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("documents of %s: %w", txID, err)
	}
	if full {
		if err := s.appearances(ctx, txID, out); err != nil {
			return nil, fmt.Errorf("documents of %s: %w", txID, err)
		}
	}
	return out, nil
}

// insertAppearance stores a document's visible signature, if it has one.
func insertAppearance(ctx context.Context, tx *sql.Tx, txID string, d *store.Document) error {
	if len(d.Appearance) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO transaction_document_appearances (transaction_id, idx, appearance) VALUES (?, ?, ?)",
		txID, d.Index, d.Appearance)
	return err
}

// appearances fills in the visible signatures of a transaction's
// documents, in index order.
func (s *DB) appearances(ctx context.Context, txID string, docs []*store.Document) error {
	rows, err := s.db.QueryContext(ctx, "SELECT idx, appearance FROM transaction_document_appearances WHERE transaction_id = ?", txID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var idx int
		var a []byte
		if err := rows.Scan(&idx, &a); err != nil {
			return err
		}
		for _, d := range docs {
			if d.Index == idx {
				d.Appearance = a
			}
		}
	}
	return rows.Err()
}

// UpdateDocument stores a document's outcome if its status is still from.
func (s *DB) UpdateDocument(ctx context.Context, d *store.Document, from string) error {
	res, err := s.exec(ctx, updateDocSQL,
		d.Status, d.ErrorCode, d.Error, nullBytes(d.Result), d.Timestamped, txNano(d.SignedAt), nullBytes(d.TimestampToken),
		txNano(d.TimestampedAt), d.TransactionID, d.Index, from)
	if err != nil {
		return fmt.Errorf("update document %s/%d: %w", d.TransactionID, d.Index, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update document %s/%d: %w", d.TransactionID, d.Index, err)
	}
	if n == 0 {
		return fmt.Errorf("update document %s/%d: not %s any more: %w", d.TransactionID, d.Index, from, store.ErrConflict)
	}
	return nil
}

const updateDocSQL = `UPDATE transaction_documents SET status = ?, error_code = ?, error = ?, result = ?, timestamped = ?,
	signed_at = ?, timestamp_token = ?, timestamped_at = ? WHERE transaction_id = ? AND idx = ? AND status = ?`

// UpdateDocuments stores many documents' outcomes in one transaction, so
// a batch of signatures costs one commit.
func (s *DB) UpdateDocuments(ctx context.Context, docs []*store.Document, from string) ([]int, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update documents: %w", err)
	}
	defer done()
	st, err := tx.PrepareContext(ctx, updateDocSQL)
	if err != nil {
		return nil, fmt.Errorf("update documents: %w", err)
	}
	defer st.Close()
	var skipped []int
	for _, d := range docs {
		res, err := st.ExecContext(ctx, d.Status, d.ErrorCode, d.Error, nullBytes(d.Result), d.Timestamped, txNano(d.SignedAt),
			nullBytes(d.TimestampToken), txNano(d.TimestampedAt), d.TransactionID, d.Index, from)
		if err != nil {
			return nil, fmt.Errorf("update document %s/%d: %w", d.TransactionID, d.Index, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("update document %s/%d: %w", d.TransactionID, d.Index, err)
		} else if n == 0 {
			skipped = append(skipped, d.Index)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update documents: %w", err)
	}
	return skipped, nil
}

// TransactionsDue lists transactions in states expiring before before.
func (s *DB) TransactionsDue(ctx context.Context, states []string, before time.Time, limit int) ([]*store.Transaction, error) {
	if len(states) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + txColumns + " FROM transactions WHERE state IN (?" + strings.Repeat(", ?", len(states)-1) + ")"
	args := make([]any, 0, len(states)+2)
	for _, st := range states {
		args = append(args, st)
	}
	if !before.IsZero() {
		q += " AND expires_at < ?"
		args = append(args, before.UnixNano())
	}
	q += " ORDER BY expires_at LIMIT ?"
	return s.queryTx(ctx, q, append(args, limit)...)
}

// PurgeDocuments empties the documents of transactions ended long ago.
func (s *DB) PurgeDocuments(ctx context.Context, endedBefore time.Time, limit int) (int64, error) {
	if limit <= 0 {
		limit = 100
	}
	res, err := s.write(ctx, `UPDATE transaction_documents SET content = NULL, result = NULL, timestamp_token = NULL, sign_options = NULL
		WHERE (content IS NOT NULL OR result IS NOT NULL OR timestamp_token IS NOT NULL) AND transaction_id IN (
			SELECT t.id FROM transactions t WHERE t.ended_at IS NOT NULL AND t.ended_at < ? AND EXISTS (
				SELECT 1 FROM transaction_documents d WHERE d.transaction_id = t.id
				AND (d.content IS NOT NULL OR d.result IS NOT NULL OR d.timestamp_token IS NOT NULL))
			LIMIT ?)`, endedBefore.UnixNano(), limit)
	if err != nil {
		return 0, fmt.Errorf("purge documents: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge documents: %w", err)
	}
	// The visible signatures (an image of the citizen's rubric, maybe)
	// go with the documents.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM transaction_document_appearances WHERE transaction_id IN (
		SELECT t.id FROM transactions t WHERE t.ended_at IS NOT NULL AND t.ended_at < ?)`, endedBefore.UnixNano()); err != nil {
		return n, fmt.Errorf("purge document appearances: %w", err)
	}
	return n, nil
}

// CallbacksDue lists transactions whose pending callback is due.
func (s *DB) CallbacksDue(ctx context.Context, now time.Time, limit int) ([]*store.Transaction, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.queryTx(ctx, "SELECT "+txColumns+" FROM transactions WHERE callback_state = 'pending' AND callback_next_at <= ? ORDER BY callback_next_at LIMIT ?",
		now.UnixNano(), limit)
}
