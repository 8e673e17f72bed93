package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

// CreateKey inserts a new key record.
func (s *DB) CreateKey(ctx context.Context, k *store.Key) error {
	_, err := s.write(ctx, `INSERT INTO keys (id, owner, type, mode, public_key, wrapped, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, k.ID, k.Owner, k.Type, k.Mode, k.PublicKey, k.Wrapped, k.CreatedAt.UnixNano())
	if err != nil {
		if uniqueViolation(err) {
			return fmt.Errorf("create key %s: %w", k.ID, store.ErrConflict)
		}
		return fmt.Errorf("create key %s: %w", k.ID, err)
	}
	return nil
}

const keyColumns = "id, owner, type, mode, public_key, wrapped, created_at, destroyed_at"

func scanKey(row interface{ Scan(...any) error }) (*store.Key, error) {
	var (
		k         store.Key
		created   int64
		destroyed sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Owner, &k.Type, &k.Mode, &k.PublicKey, &k.Wrapped, &created, &destroyed); err != nil {
		return nil, err
	}
	k.CreatedAt = time.Unix(0, created).UTC()
	if destroyed.Valid {
		k.DestroyedAt = time.Unix(0, destroyed.Int64).UTC()
	}
	return &k, nil
}

// Key returns the key record with the given ID.
func (s *DB) Key(ctx context.Context, id string) (*store.Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	return k, nil
}

// Keys lists key records ordered by ID.
func (s *DB) Keys(ctx context.Context, owner, after string, limit int) ([]*store.Key, error) {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + keyColumns + " FROM keys WHERE id > ?"
	args := []any{after}
	if owner != "" {
		q += " AND owner = ?"
		args = append(args, owner)
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []*store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// DestroyKey marks a key destroyed and erases its wrapped blob.
func (s *DB) DestroyKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.write(ctx, "UPDATE keys SET destroyed_at = ?, wrapped = NULL WHERE id = ? AND destroyed_at IS NULL", at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("destroy key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Key(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
