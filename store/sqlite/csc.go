package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.CSCStore = (*DB)(nil)

const cscChallengeColumns = "id, credential_id, caller, citizen_id, hash, sends, attempts, sent_at, expires_at, used_at, locked_at, created_at"

func cscScanChallenge(row interface{ Scan(...any) error }) (*store.CSCChallenge, error) {
	var (
		c                                    store.CSCChallenge
		sent, expires, used, locked, created sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.CredentialID, &c.Caller, &c.CitizenID, &c.Hash, &c.Sends, &c.Attempts,
		&sent, &expires, &used, &locked, &created); err != nil {
		return nil, err
	}
	c.SentAt, c.ExpiresAt, c.UsedAt, c.LockedAt, c.CreatedAt = regTime(sent), regTime(expires), regTime(used), regTime(locked), regTime(created)
	return &c, nil
}

// PutCSCChallenge inserts a challenge, or replaces the one created at
// prevCreated.
func (s *DB) PutCSCChallenge(ctx context.Context, c *store.CSCChallenge, prevCreated time.Time) error {
	args := []any{c.CredentialID, c.Caller, c.CitizenID, c.Hash, c.Sends, c.Attempts,
		regNano(c.SentAt), regNano(c.ExpiresAt), regNano(c.UsedAt), regNano(c.LockedAt), regNano(c.CreatedAt)}
	if prevCreated.IsZero() {
		_, err := s.write(ctx, "INSERT INTO csc_challenges ("+cscChallengeColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			append([]any{c.ID}, args...)...)
		if regUnique(err) {
			return fmt.Errorf("put csc challenge: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("put csc challenge: %w", err)
		}
		return nil
	}
	res, err := s.write(ctx, `UPDATE csc_challenges SET credential_id = ?, caller = ?, citizen_id = ?, hash = ?,
		sends = ?, attempts = ?, sent_at = ?, expires_at = ?, used_at = ?, locked_at = ?, created_at = ?
		WHERE id = ? AND created_at = ?`, append(args, c.ID, prevCreated.UnixNano())...)
	if err != nil {
		return fmt.Errorf("put csc challenge: %w", err)
	}
	return cscOneRow(res, "put csc challenge", store.ErrConflict)
}

// CSCChallenge returns a challenge by ID.
func (s *DB) CSCChallenge(ctx context.Context, id string) (*store.CSCChallenge, error) {
	c, err := cscScanChallenge(s.db.QueryRowContext(ctx, "SELECT "+cscChallengeColumns+" FROM csc_challenges WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("csc challenge: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("csc challenge: %w", err)
	}
	return c, nil
}

// ResendCSCChallenge replaces the code of a live challenge within the
// resend limits.
func (s *DB) ResendCSCChallenge(ctx context.Context, id string, hash []byte, maxSends int, notAfter, at, expires time.Time) (*store.CSCChallenge, error) {
	c, err := cscScanChallenge(s.writeRow(ctx, `UPDATE csc_challenges
		SET hash = ?, sends = sends + 1, sent_at = ?, expires_at = ?
		WHERE id = ? AND used_at IS NULL AND locked_at IS NULL AND sends < ? AND sent_at <= ?
		RETURNING `+cscChallengeColumns, hash, at.UnixNano(), expires.UnixNano(), id, maxSends, notAfter.UnixNano()))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.CSCChallenge(ctx, id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("resend csc challenge: %w", store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("resend csc challenge: %w", err)
	}
	return c, nil
}

// UseCSCChallenge spends a challenge once.
func (s *DB) UseCSCChallenge(ctx context.Context, id string, at time.Time) error {
	res, err := s.write(ctx, "UPDATE csc_challenges SET used_at = ? WHERE id = ? AND used_at IS NULL AND locked_at IS NULL",
		at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("use csc challenge: %w", err)
	}
	if err := cscOneRow(res, "use csc challenge", store.ErrConflict); err != nil {
		if _, err2 := s.CSCChallenge(ctx, id); err2 != nil {
			return err2
		}
		return err
	}
	return nil
}

// CreateSAD stores a SAD and its hashes in one transaction.
func (s *DB) CreateSAD(ctx context.Context, sad *store.SAD) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("create sad: %w", err)
	}
	defer done()
	_, err = tx.ExecContext(ctx, `INSERT INTO csc_sads (id, credential_id, caller, citizen_id, key_id, hash_algo,
		num_signatures, used, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sad.ID, sad.CredentialID, sad.Caller, sad.CitizenID, sad.KeyID, sad.HashAlgo, sad.NumSignatures, sad.Used,
		sad.CreatedAt.UnixNano(), sad.ExpiresAt.UnixNano())
	if regUnique(err) {
		return fmt.Errorf("create sad: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create sad: %w", err)
	}
	for i, h := range sad.Hashes {
		_, err := tx.ExecContext(ctx, "INSERT INTO csc_sad_hashes (sad_id, idx, hash) VALUES (?, ?, ?)", sad.ID, i, h)
		if regUnique(err) {
			return fmt.Errorf("create sad: hash %d listed twice: %w", i, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create sad: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create sad: %w", err)
	}
	return nil
}

// SAD returns a SAD and its hashes in the order they were authorised.
func (s *DB) SAD(ctx context.Context, id string) (*store.SAD, error) {
	var (
		sad              store.SAD
		created, expires int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, credential_id, caller, citizen_id, key_id, hash_algo, num_signatures, used,
		created_at, expires_at FROM csc_sads WHERE id = ?`, id).Scan(&sad.ID, &sad.CredentialID, &sad.Caller, &sad.CitizenID,
		&sad.KeyID, &sad.HashAlgo, &sad.NumSignatures, &sad.Used, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sad: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sad: %w", err)
	}
	sad.CreatedAt, sad.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	rows, err := s.db.QueryContext(ctx, "SELECT hash, used_at FROM csc_sad_hashes WHERE sad_id = ? ORDER BY idx", id)
	if err != nil {
		return nil, fmt.Errorf("sad: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			h    []byte
			used sql.NullInt64
		)
		if err := rows.Scan(&h, &used); err != nil {
			return nil, fmt.Errorf("sad: %w", err)
		}
		sad.Hashes = append(sad.Hashes, h)
		if used.Valid {
			sad.Spent = append(sad.Spent, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sad: %w", err)
	}
	return &sad, nil
}

// ReserveSAD spends every hash or none. The count and each hash are
// conditional updates inside one immediate transaction, so a concurrent
// reservation on another connection or node waits and then finds them
// spent.
func (s *DB) ReserveSAD(ctx context.Context, id string, hashes [][]byte, at time.Time) error {
	if len(hashes) == 0 {
		return fmt.Errorf("reserve sad: no hashes: %w", store.ErrConflict)
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("reserve sad: %w", err)
	}
	defer done()
	res, err := tx.ExecContext(ctx, `UPDATE csc_sads SET used = used + ?
		WHERE id = ? AND used + ? <= num_signatures AND expires_at > ?`, len(hashes), id, len(hashes), at.UnixNano())
	if err != nil {
		return fmt.Errorf("reserve sad: %w", err)
	}
	if err := cscOneRow(res, "reserve sad", store.ErrConflict); err != nil {
		return err
	}
	for i, h := range hashes {
		res, err := tx.ExecContext(ctx, "UPDATE csc_sad_hashes SET used_at = ? WHERE sad_id = ? AND hash = ? AND used_at IS NULL",
			at.UnixNano(), id, h)
		if err != nil {
			return fmt.Errorf("reserve sad: %w", err)
		}
		if err := cscOneRow(res, fmt.Sprintf("reserve sad: hash %d", i), store.ErrConflict); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reserve sad: %w", err)
	}
	return nil
}

// ReleaseSAD gives back hashes whose signing failed.
func (s *DB) ReleaseSAD(ctx context.Context, id string, hashes [][]byte) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("release sad: %w", err)
	}
	defer done()
	var n int64
	for _, h := range hashes {
		res, err := tx.ExecContext(ctx, "UPDATE csc_sad_hashes SET used_at = NULL WHERE sad_id = ? AND hash = ? AND used_at IS NOT NULL", id, h)
		if err != nil {
			return fmt.Errorf("release sad: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("release sad: %w", err)
		}
		n += k
	}
	if _, err := tx.ExecContext(ctx, "UPDATE csc_sads SET used = MAX(used - ?, 0) WHERE id = ?", n, id); err != nil {
		return fmt.Errorf("release sad: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("release sad: %w", err)
	}
	return nil
}

// DeleteExpiredSADs removes SADs (and by cascade their hashes) that
// expired before the given time.
func (s *DB) DeleteExpiredSADs(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.write(ctx, "DELETE FROM csc_sads WHERE expires_at < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("delete expired sads: %w", err)
	}
	return res.RowsAffected()
}

// cscOneRow turns an update that matched no row into notMatched.
func cscOneRow(res sql.Result, what string, notMatched error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, notMatched)
	}
	return nil
}
