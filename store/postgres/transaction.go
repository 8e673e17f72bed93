package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firma-cloud/firma/store"
)

var _ store.TransactionStore = (*DB)(nil)

const txColumns = `id, portal_id, citizen_id, state, stop_on_error, level, ok_url, error_url, idempotency_key, request_hash,
	approval_digest, session_hash, otp_hash, otp_expires_at, otp_sends, otp_sent_at, otp_tries, certificate_id, key_id,
	summary, error_code, error_message, created_at, updated_at, expires_at, authenticated_at, approved_at, ended_at,
	callback_state, callback_attempts, callback_next_at, callback_error, version`

func approvalDigest(t *store.Transaction) []byte {
	if t.ApprovalDigest == nil {
		return []byte{} // an open batch has none yet; the column is NOT NULL
	}
	return t.ApprovalDigest
}

func txArgs(t *store.Transaction) []any {
	return []any{t.ID, t.PortalID, t.CitizenID, t.State, t.StopOnError, t.Level, t.OKURL, t.ErrorURL, t.IdempotencyKey, t.RequestHash,
		approvalDigest(t), t.SessionHash, t.OTPHash, nanos(t.OTPExpiresAt), t.OTPSends, nanos(t.OTPSentAt), t.OTPTries,
		t.CertificateID, t.KeyID, t.Summary, t.ErrorCode, t.ErrorMessage, t.CreatedAt.UnixNano(), t.UpdatedAt.UnixNano(), t.ExpiresAt.UnixNano(),
		nanos(t.AuthenticatedAt), nanos(t.ApprovedAt), nanos(t.EndedAt), t.CallbackState, t.CallbackAttempts, nanos(t.CallbackNextAt),
		t.CallbackError, t.Version}
}

func scanTx(row scanner) (*store.Transaction, error) {
	var (
		t                                                  store.Transaction
		otpExp, otpSent, created, updated, expires, authAt *int64
		approved, ended, cbNext                            *int64
	)
	if err := row.Scan(&t.ID, &t.PortalID, &t.CitizenID, &t.State, &t.StopOnError, &t.Level, &t.OKURL, &t.ErrorURL, &t.IdempotencyKey,
		&t.RequestHash, &t.ApprovalDigest, &t.SessionHash, &t.OTPHash, &otpExp, &t.OTPSends, &otpSent, &t.OTPTries, &t.CertificateID,
		&t.KeyID, &t.Summary, &t.ErrorCode, &t.ErrorMessage, &created, &updated, &expires, &authAt, &approved, &ended,
		&t.CallbackState, &t.CallbackAttempts, &cbNext, &t.CallbackError, &t.Version); err != nil {
		return nil, err
	}
	t.OTPExpiresAt, t.OTPSentAt = fromNanos(otpExp), fromNanos(otpSent)
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = fromNanos(created), fromNanos(updated), fromNanos(expires)
	t.AuthenticatedAt, t.ApprovedAt, t.EndedAt, t.CallbackNextAt = fromNanos(authAt), fromNanos(approved), fromNanos(ended), fromNanos(cbNext)
	return &t, nil
}

const insertDocSQL = `INSERT INTO transaction_documents (transaction_id, idx, name, media_type, format, hash, digest,
	content, size, status, error_code, error, result, timestamped, signed_at, timestamp_token, timestamped_at, sign_options)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`

func docArgs(txID string, d *store.Document) []any {
	digest := d.Digest
	if digest == nil {
		digest = []byte{}
	}
	return []any{txID, d.Index, d.Name, d.MediaType, d.Format, d.Hash, digest, d.Content, d.Size, d.Status, d.ErrorCode, d.Error,
		d.Result, d.Timestamped, nanos(d.SignedAt), d.TimestampToken, nanos(d.TimestampedAt), d.SignOptions}
}

// CreateTransaction inserts the transaction and its documents.
//
// The rate check and the insert must not interleave with another node's:
// the transaction locks the portal's row first (FOR NO KEY UPDATE, which
// the foreign-key checks of concurrent inserts do not wait on), so
// creations for one portal take turns while other portals go on.
func (s *DB) CreateTransaction(ctx context.Context, t *store.Transaction, docs []*store.Document, ratePerMin int) error {
	if t.Version == 0 {
		t.Version = 1
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if ratePerMin > 0 {
			if _, err := tx.Exec(ctx, "SELECT 1 FROM portals WHERE id = $1 FOR NO KEY UPDATE", t.PortalID); err != nil {
				return fmt.Errorf("rate: %w", err)
			}
			var n int
			// No upper bound: a row stamped later by a node whose clock
			// runs ahead still counts.
			err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM transactions WHERE portal_id = $1 AND created_at > $2",
				t.PortalID, t.CreatedAt.Add(-time.Minute).UnixNano()).Scan(&n)
			if err != nil {
				return fmt.Errorf("rate: %w", err)
			}
			if n >= ratePerMin {
				return fmt.Errorf("portal %s: %d in the last minute: %w", t.PortalID, n, store.ErrRateLimited)
			}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO transactions ("+txColumns+") VALUES ("+placeholders(1, 33)+")", txArgs(t)...); err != nil {
			return conflict(err)
		}
		if len(docs) == 0 {
			return nil
		}
		var b pgx.Batch
		for _, d := range docs {
			b.Queue(insertDocSQL, docArgs(t.ID, d)...)
			if len(d.Appearance) > 0 {
				b.Queue(insertAppearanceSQL, t.ID, d.Index, d.Appearance)
			}
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("documents: %w", conflict(err))
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrRateLimited) {
			return err
		}
		return fmt.Errorf("create transaction %s: %w", t.ID, err)
	}
	return nil
}

// Transaction returns a transaction by ID.
func (s *DB) Transaction(ctx context.Context, id string) (*store.Transaction, error) {
	t, err := scanTx(s.pool.QueryRow(ctx, "SELECT "+txColumns+" FROM transactions WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", id, notFound(err))
	}
	return t, nil
}

// TransactionByIdempotencyKey returns the portal's transaction created with key.
func (s *DB) TransactionByIdempotencyKey(ctx context.Context, portalID, key string) (*store.Transaction, error) {
	t, err := scanTx(s.pool.QueryRow(ctx, "SELECT "+txColumns+" FROM transactions WHERE portal_id = $1 AND idempotency_key = $2 AND idempotency_key <> ''",
		portalID, key))
	if err != nil {
		return nil, fmt.Errorf("transaction with idempotency key: %w", notFound(err))
	}
	return t, nil
}

// Transactions lists transactions ordered by ID.
func (s *DB) Transactions(ctx context.Context, f store.TransactionFilter) ([]*store.Transaction, error) {
	q := "SELECT " + txColumns + " FROM transactions WHERE id > $1"
	args := []any{f.After}
	for _, c := range []struct{ col, v string }{{"portal_id", f.PortalID}, {"citizen_id", f.CitizenID}, {"state", f.State}} {
		if c.v != "" {
			args = append(args, c.v)
			q += fmt.Sprintf(" AND %s = $%d", c.col, len(args))
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	return s.queryTx(ctx, q, args...)
}

func (s *DB) queryTx(ctx context.Context, q string, args ...any) ([]*store.Transaction, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	out, err := collect(rows, scanTx)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	return out, nil
}

// UpdateTransaction stores t if nobody updated it since it was read: the
// version check and the write are one UPDATE, which a concurrent one on
// another node waits for and then re-checks, so only one step wins.
func (s *DB) UpdateTransaction(ctx context.Context, t *store.Transaction) error {
	// Every column but id, portal, citizen, creation data and version.
	tag, err := s.pool.Exec(ctx, `UPDATE transactions SET state = $1, approval_digest = $2, session_hash = $3, otp_hash = $4,
		otp_expires_at = $5, otp_sends = $6, otp_sent_at = $7, otp_tries = $8, certificate_id = $9, key_id = $10, summary = $11,
		error_code = $12, error_message = $13, updated_at = $14, expires_at = $15, authenticated_at = $16, approved_at = $17,
		ended_at = $18, callback_state = $19, callback_attempts = $20, callback_next_at = $21, callback_error = $22,
		version = version + 1
		WHERE id = $23 AND version = $24`,
		t.State, approvalDigest(t), t.SessionHash, t.OTPHash, nanos(t.OTPExpiresAt), t.OTPSends, nanos(t.OTPSentAt), t.OTPTries,
		t.CertificateID, t.KeyID, t.Summary, t.ErrorCode, t.ErrorMessage, t.UpdatedAt.UnixNano(), t.ExpiresAt.UnixNano(),
		nanos(t.AuthenticatedAt), nanos(t.ApprovedAt), nanos(t.EndedAt), t.CallbackState, t.CallbackAttempts, nanos(t.CallbackNextAt),
		t.CallbackError, t.ID, t.Version)
	if err != nil {
		return fmt.Errorf("update transaction %s: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		var v int64
		err := s.pool.QueryRow(ctx, "SELECT version FROM transactions WHERE id = $1", t.ID).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("transaction %s: %w", t.ID, store.ErrNotFound)
		}
		return fmt.Errorf("update transaction %s: version %d is stale: %w", t.ID, t.Version, store.ErrConflict)
	}
	t.Version++
	return nil
}

// AddDocument inserts a document into a draft batch, bumping the batch's
// version in the same transaction so that concurrent adds serialise.
func (s *DB) AddDocument(ctx context.Context, t *store.Transaction, d *store.Document) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return addDocument(ctx, tx, t, d) })
	if err != nil {
		return fmt.Errorf("add document to %s: %w", t.ID, err)
	}
	t.Version++
	return nil
}

// addDocument is AddDocument's writes inside tx; t.Version is left as
// read.
func addDocument(ctx context.Context, tx pgx.Tx, t *store.Transaction, d *store.Document) error {
	tag, err := tx.Exec(ctx, "UPDATE transactions SET version = version + 1, updated_at = $1 WHERE id = $2 AND version = $3 AND state = 'draft'",
		t.UpdatedAt.UnixNano(), t.ID, t.Version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrConflict
	}
	digest := d.Digest
	if digest == nil {
		digest = []byte{}
	}
	_, err = tx.Exec(ctx, `INSERT INTO transaction_documents (transaction_id, idx, name, media_type, format, hash, digest,
		content, size, status, sign_options) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, d.Index, d.Name, d.MediaType, d.Format, d.Hash, digest, d.Content, d.Size, d.Status, d.SignOptions)
	if err != nil {
		return fmt.Errorf("document %d: %w", d.Index, conflict(err))
	}
	if len(d.Appearance) > 0 {
		if _, err := tx.Exec(ctx, insertAppearanceSQL, t.ID, d.Index, d.Appearance); err != nil {
			return fmt.Errorf("document %d appearance: %w", d.Index, conflict(err))
		}
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
	rows, err := s.pool.Query(ctx, "SELECT "+cols+" FROM transaction_documents WHERE transaction_id = $1 ORDER BY idx", txID)
	if err != nil {
		return nil, fmt.Errorf("documents of %s: %w", txID, err)
	}
	out, err := collect(rows, func(row scanner) (*store.Document, error) {
		var (
			d                   store.Document
			signed, timestamped *int64
		)
		dst := []any{&d.TransactionID, &d.Index, &d.Name, &d.MediaType, &d.Format, &d.Hash, &d.Digest, &d.Size, &d.Status, &d.ErrorCode,
			&d.Error, &d.Timestamped, &signed, &timestamped}
		if full {
			dst = append(dst, &d.Content, &d.Result, &d.TimestampToken, &d.SignOptions)
		}
		if err := row.Scan(dst...); err != nil {
			return nil, err
		}
		d.SignedAt, d.TimestampedAt = fromNanos(signed), fromNanos(timestamped)
		return &d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("documents of %s: %w", txID, err)
	}
	if full && len(out) > 0 {
		rows, err := s.pool.Query(ctx, "SELECT idx, appearance FROM transaction_document_appearances WHERE transaction_id = $1", txID)
		if err != nil {
			return nil, fmt.Errorf("documents of %s: %w", txID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var idx int
			var a []byte
			if err := rows.Scan(&idx, &a); err != nil {
				return nil, fmt.Errorf("documents of %s: %w", txID, err)
			}
			for _, d := range out {
				if d.Index == idx {
					d.Appearance = a
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("documents of %s: %w", txID, err)
		}
	}
	return out, nil
}

const insertAppearanceSQL = "INSERT INTO transaction_document_appearances (transaction_id, idx, appearance) VALUES ($1, $2, $3)"

const updateDocSQL = `UPDATE transaction_documents SET status = $1, error_code = $2, error = $3, result = $4, timestamped = $5,
	signed_at = $6, timestamp_token = $7, timestamped_at = $8 WHERE transaction_id = $9 AND idx = $10 AND status = $11`

func updateDocArgs(d *store.Document, from string) []any {
	return []any{d.Status, d.ErrorCode, d.Error, d.Result, d.Timestamped, nanos(d.SignedAt), d.TimestampToken,
		nanos(d.TimestampedAt), d.TransactionID, d.Index, from}
}

// UpdateDocument stores a document's outcome if its status is still from.
func (s *DB) UpdateDocument(ctx context.Context, d *store.Document, from string) error {
	tag, err := s.pool.Exec(ctx, updateDocSQL, updateDocArgs(d, from)...)
	if err != nil {
		return fmt.Errorf("update document %s/%d: %w", d.TransactionID, d.Index, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update document %s/%d: not %s any more: %w", d.TransactionID, d.Index, from, store.ErrConflict)
	}
	return nil
}

// UpdateDocuments stores many documents' outcomes in one transaction sent
// as one pipelined batch, so a batch of signatures costs one round trip
// and one commit.
func (s *DB) UpdateDocuments(ctx context.Context, docs []*store.Document, from string) ([]int, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	var skipped []int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		skipped = skipped[:0]
		var b pgx.Batch
		for _, d := range docs {
			b.Queue(updateDocSQL, updateDocArgs(d, from)...)
		}
		res := tx.SendBatch(ctx, &b)
		for _, d := range docs {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return fmt.Errorf("document %s/%d: %w", d.TransactionID, d.Index, err)
			}
			if tag.RowsAffected() == 0 {
				skipped = append(skipped, d.Index)
			}
		}
		return res.Close()
	})
	if err != nil {
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
	q := "SELECT " + txColumns + " FROM transactions WHERE state = ANY($1)"
	args := []any{states}
	if !before.IsZero() {
		args = append(args, before.UnixNano())
		q += " AND expires_at < $2"
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY expires_at LIMIT $%d", len(args))
	return s.queryTx(ctx, q, args...)
}

// PurgeDocuments empties the documents of transactions ended long ago.
func (s *DB) PurgeDocuments(ctx context.Context, endedBefore time.Time, limit int) (int64, error) {
	if limit <= 0 {
		limit = 100
	}
	tag, err := s.pool.Exec(ctx, `UPDATE transaction_documents SET content = NULL, result = NULL, timestamp_token = NULL, sign_options = NULL
		WHERE (content IS NOT NULL OR result IS NOT NULL OR timestamp_token IS NOT NULL) AND transaction_id IN (
			SELECT t.id FROM transactions t WHERE t.ended_at IS NOT NULL AND t.ended_at < $1 AND EXISTS (
				SELECT 1 FROM transaction_documents d WHERE d.transaction_id = t.id
				AND (d.content IS NOT NULL OR d.result IS NOT NULL OR d.timestamp_token IS NOT NULL))
			LIMIT $2)`, endedBefore.UnixNano(), limit)
	if err != nil {
		return 0, fmt.Errorf("purge documents: %w", err)
	}
	// The visible signatures (an image of the citizen's rubric, maybe)
	// go with the documents.
	if _, err := s.pool.Exec(ctx, `DELETE FROM transaction_document_appearances WHERE transaction_id IN (
		SELECT t.id FROM transactions t WHERE t.ended_at IS NOT NULL AND t.ended_at < $1)`, endedBefore.UnixNano()); err != nil {
		return tag.RowsAffected(), fmt.Errorf("purge document appearances: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CallbacksDue lists transactions whose pending callback is due.
func (s *DB) CallbacksDue(ctx context.Context, now time.Time, limit int) ([]*store.Transaction, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.queryTx(ctx, "SELECT "+txColumns+" FROM transactions WHERE callback_state = 'pending' AND callback_next_at <= $1 ORDER BY callback_next_at LIMIT $2",
		now.UnixNano(), limit)
}
