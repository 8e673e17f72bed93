package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firma-cloud/firma/store"
)

// CreateKey inserts a new key record.
func (s *DB) CreateKey(ctx context.Context, k *store.Key) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO keys (id, owner, type, mode, public_key, wrapped, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, k.ID, k.Owner, k.Type, k.Mode, k.PublicKey, k.Wrapped, k.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, conflict(err))
	}
	return nil
}

// CreateKeys inserts many key records with one COPY in one transaction:
// bulk enrolment in wrapped mode writes a million of them. ErrConflict,
// and nothing stored, if one ID exists.
func (s *DB) CreateKeys(ctx context.Context, keys []*store.Key) error {
	if len(keys) == 0 {
		return nil
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{k.ID, k.Owner, k.Type, k.Mode, k.PublicKey, k.Wrapped, k.CreatedAt.UnixNano()}
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"keys"}, []string{"id", "owner", "type", "mode", "public_key", "wrapped", "created_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("create %d keys: %w", len(keys), conflict(err))
	}
	return nil
}

const keyColumns = "id, owner, type, mode, public_key, wrapped, created_at, destroyed_at"

func scanKey(row scanner) (*store.Key, error) {
	var (
		k         store.Key
		created   int64
		destroyed *int64
	)
	if err := row.Scan(&k.ID, &k.Owner, &k.Type, &k.Mode, &k.PublicKey, &k.Wrapped, &created, &destroyed); err != nil {
		return nil, err
	}
	k.CreatedAt = time.Unix(0, created).UTC()
	k.DestroyedAt = fromNanos(destroyed)
	return &k, nil
}

// Key returns the key record with the given ID.
func (s *DB) Key(ctx context.Context, id string) (*store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM keys WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, notFound(err))
	}
	return k, nil
}

// Keys lists key records ordered by ID.
func (s *DB) Keys(ctx context.Context, owner, after string, limit int) ([]*store.Key, error) {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + keyColumns + " FROM keys WHERE id > $1"
	args := []any{after}
	if owner != "" {
		q += " AND owner = $2"
		args = append(args, owner)
	}
	q += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args)+1)
	rows, err := s.pool.Query(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out, err := collect(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// DestroyKey marks a key destroyed and erases its wrapped blob.
func (s *DB) DestroyKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE keys SET destroyed_at = $1, wrapped = NULL WHERE id = $2 AND destroyed_at IS NULL", at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("destroy key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Key(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
