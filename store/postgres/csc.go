package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firma-cloud/firma/store"
)

const cscChallengeColumns = "id, credential_id, caller, citizen_id, hash, sends, attempts, sent_at, expires_at, used_at, locked_at, created_at"

func scanChallenge(row scanner) (*store.CSCChallenge, error) {
	var (
		c                                    store.CSCChallenge
		sent, expires, used, locked, created *int64
	)
	if err := row.Scan(&c.ID, &c.CredentialID, &c.Caller, &c.CitizenID, &c.Hash, &c.Sends, &c.Attempts,
		&sent, &expires, &used, &locked, &created); err != nil {
		return nil, err
	}
	c.SentAt, c.ExpiresAt, c.UsedAt, c.LockedAt, c.CreatedAt = fromNanos(sent), fromNanos(expires), fromNanos(used), fromNanos(locked), fromNanos(created)
	return &c, nil
}

// PutCSCChallenge inserts a challenge, or replaces the one created at
// prevCreated.
func (s *DB) PutCSCChallenge(ctx context.Context, c *store.CSCChallenge, prevCreated time.Time) error {
	hash := c.Hash
	if hash == nil {
		hash = []byte{}
	}
	args := []any{c.CredentialID, c.Caller, c.CitizenID, hash, c.Sends, c.Attempts,
		nanos(c.SentAt), nanos(c.ExpiresAt), nanos(c.UsedAt), nanos(c.LockedAt), nanos(c.CreatedAt)}
	if prevCreated.IsZero() {
		_, err := s.pool.Exec(ctx, "INSERT INTO csc_challenges ("+cscChallengeColumns+") VALUES ("+placeholders(1, 12)+")",
			append([]any{c.ID}, args...)...)
		if err != nil {
			return fmt.Errorf("put csc challenge: %w", conflict(err))
		}
		return nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE csc_challenges SET credential_id = $1, caller = $2, citizen_id = $3, hash = $4,
		sends = $5, attempts = $6, sent_at = $7, expires_at = $8, used_at = $9, locked_at = $10, created_at = $11
		WHERE id = $12 AND created_at = $13`, append(args, c.ID, prevCreated.UnixNano())...)
	if err != nil {
		return fmt.Errorf("put csc challenge: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put csc challenge: %w", store.ErrConflict)
	}
	return nil
}

// CSCChallenge returns a challenge by ID.
func (s *DB) CSCChallenge(ctx context.Context, id string) (*store.CSCChallenge, error) {
	c, err := scanChallenge(s.pool.QueryRow(ctx, "SELECT "+cscChallengeColumns+" FROM csc_challenges WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("csc challenge: %w", notFound(err))
	}
	return c, nil
}

// ResendCSCChallenge replaces the code of a live challenge within the
// resend limits, in one conditional update.
func (s *DB) ResendCSCChallenge(ctx context.Context, id string, hash []byte, maxSends int, notAfter, at, expires time.Time) (*store.CSCChallenge, error) {
	c, err := scanChallenge(s.pool.QueryRow(ctx, `UPDATE csc_challenges
		SET hash = $1, sends = sends + 1, sent_at = $2, expires_at = $3
		WHERE id = $4 AND used_at IS NULL AND locked_at IS NULL AND sends < $5 AND sent_at <= $6
		RETURNING `+cscChallengeColumns, hash, at.UnixNano(), expires.UnixNano(), id, maxSends, notAfter.UnixNano()))
	if err != nil {
		if notFound(err) == store.ErrNotFound {
			if _, err := s.CSCChallenge(ctx, id); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("resend csc challenge: %w", store.ErrConflict)
		}
		return nil, fmt.Errorf("resend csc challenge: %w", err)
	}
	return c, nil
}

// UseCSCChallenge spends a challenge once.
func (s *DB) UseCSCChallenge(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE csc_challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND locked_at IS NULL",
		at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("use csc challenge: %w", err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.CSCChallenge(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("use csc challenge: %w", store.ErrConflict)
	}
	return nil
}

// CreateSAD stores a SAD and its hashes in one transaction.
func (s *DB) CreateSAD(ctx context.Context, sad *store.SAD) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO csc_sads (id, credential_id, caller, citizen_id, key_id, hash_algo,
			num_signatures, used, created_at, expires_at) VALUES (`+placeholders(1, 10)+`)`,
			sad.ID, sad.CredentialID, sad.Caller, sad.CitizenID, sad.KeyID, sad.HashAlgo, sad.NumSignatures, sad.Used,
			sad.CreatedAt.UnixNano(), sad.ExpiresAt.UnixNano())
		if err != nil {
			return fmt.Errorf("create sad: %w", conflict(err))
		}
		for i, h := range sad.Hashes {
			if _, err := tx.Exec(ctx, "INSERT INTO csc_sad_hashes (sad_id, idx, hash) VALUES ($1, $2, $3)", sad.ID, i, h); err != nil {
				if isUnique(err) {
					return fmt.Errorf("create sad: hash %d listed twice: %w", i, store.ErrConflict)
				}
				return fmt.Errorf("create sad: %w", err)
			}
		}
		return nil
	})
}

// SAD returns a SAD and its hashes in the order they were authorised.
func (s *DB) SAD(ctx context.Context, id string) (*store.SAD, error) {
	var (
		sad              store.SAD
		created, expires int64
	)
	err := s.pool.QueryRow(ctx, `SELECT id, credential_id, caller, citizen_id, key_id, hash_algo, num_signatures, used,
		created_at, expires_at FROM csc_sads WHERE id = $1`, id).Scan(&sad.ID, &sad.CredentialID, &sad.Caller, &sad.CitizenID,
		&sad.KeyID, &sad.HashAlgo, &sad.NumSignatures, &sad.Used, &created, &expires)
	if err != nil {
		return nil, fmt.Errorf("sad: %w", notFound(err))
	}
	sad.CreatedAt, sad.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	rows, err := s.pool.Query(ctx, "SELECT hash, used_at FROM csc_sad_hashes WHERE sad_id = $1 ORDER BY idx", id)
	if err != nil {
		return nil, fmt.Errorf("sad: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			h    []byte
			used *int64
		)
		if err := rows.Scan(&h, &used); err != nil {
			return nil, fmt.Errorf("sad: %w", err)
		}
		sad.Hashes = append(sad.Hashes, h)
		if used != nil {
			sad.Spent = append(sad.Spent, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sad: %w", err)
	}
	return &sad, nil
}

// ReserveSAD spends every hash or none. The count is bumped first: its row
// lock holds off a concurrent reservation of the same SAD on any node until
// this one commits or rolls back, and then that one re-reads the count and
// the hashes.
func (s *DB) ReserveSAD(ctx context.Context, id string, hashes [][]byte, at time.Time) error {
	if len(hashes) == 0 {
		return fmt.Errorf("reserve sad: no hashes: %w", store.ErrConflict)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE csc_sads SET used = used + $1
			WHERE id = $2 AND used + $1 <= num_signatures AND expires_at > $3`, len(hashes), id, at.UnixNano())
		if err != nil {
			return fmt.Errorf("reserve sad: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("reserve sad: %w", store.ErrConflict)
		}
		for i, h := range hashes {
			tag, err := tx.Exec(ctx, "UPDATE csc_sad_hashes SET used_at = $1 WHERE sad_id = $2 AND hash = $3 AND used_at IS NULL",
				at.UnixNano(), id, h)
			if err != nil {
				return fmt.Errorf("reserve sad: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("reserve sad: hash %d: %w", i, store.ErrConflict)
			}
		}
		return nil
	})
}

// ReleaseSAD gives back hashes whose signing failed.
func (s *DB) ReleaseSAD(ctx context.Context, id string, hashes [][]byte) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the SAD first, in the order ReserveSAD takes its locks, so
		// the two cannot deadlock.
		if _, err := tx.Exec(ctx, "SELECT 1 FROM csc_sads WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		var n int64
		for _, h := range hashes {
			tag, err := tx.Exec(ctx, "UPDATE csc_sad_hashes SET used_at = NULL WHERE sad_id = $1 AND hash = $2 AND used_at IS NOT NULL", id, h)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		_, err := tx.Exec(ctx, "UPDATE csc_sads SET used = GREATEST(used - $1, 0) WHERE id = $2", n, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("release sad: %w", err)
	}
	return nil
}

// DeleteExpiredSADs removes SADs (and by cascade their hashes) that
// expired before the given time.
func (s *DB) DeleteExpiredSADs(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM csc_sads WHERE expires_at < $1", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("delete expired sads: %w", err)
	}
	return tag.RowsAffected(), nil
}
