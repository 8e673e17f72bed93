package sqlite

import (
	"context"
	"fmt"

	"github.com/firma-cloud/firma/store"
)

// CreateKeys inserts key records in one transaction: all or none. Bulk
// enrolment commits once per batch, which is where SQLite's time goes.
func (s *DB) CreateKeys(ctx context.Context, keys []*store.Key) error {
	if len(keys) == 0 {
		return nil
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("create keys: %w", err)
	}
	defer done()
	st, err := tx.PrepareContext(ctx, `INSERT INTO keys (id, owner, type, mode, public_key, wrapped, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("create keys: %w", err)
	}
	defer st.Close()
	for _, k := range keys {
		if _, err := st.ExecContext(ctx, k.ID, k.Owner, k.Type, k.Mode, k.PublicKey, k.Wrapped, k.CreatedAt.UnixNano()); err != nil {
			if uniqueViolation(err) {
				return fmt.Errorf("create key %s: %w", k.ID, store.ErrConflict)
			}
			return fmt.Errorf("create key %s: %w", k.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create keys: %w", err)
	}
	return nil
}
