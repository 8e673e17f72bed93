package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.MailStore = (*DB)(nil)

// PutEmail adds a message to the mail outbox.
func (s *DB) PutEmail(ctx context.Context, m *store.Email) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO mail_outbox (id, recipient, subject, body, created_at) VALUES (?, ?, ?, ?, ?)",
		m.ID, m.To, m.Subject, m.Text, m.CreatedAt.UnixNano())
	if regUnique(err) {
		return fmt.Errorf("put email %s: %w", m.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put email: %w", err)
	}
	return nil
}

// Emails lists outbox messages newest first.
func (s *DB) Emails(ctx context.Context, to string, limit int) ([]*store.Email, error) {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT id, recipient, subject, body, created_at FROM mail_outbox"
	var args []any
	if to != "" {
		q += " WHERE recipient = ?"
		args = append(args, to)
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list emails: %w", err)
	}
	defer rows.Close()
	var out []*store.Email
	for rows.Next() {
		var (
			m       store.Email
			created sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.Text, &created); err != nil {
			return nil, fmt.Errorf("list emails: %w", err)
		}
		m.CreatedAt = regTime(created)
		out = append(out, &m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list emails: %w", err)
	}
	return out, nil
}

// DeleteEmails deletes outbox messages created before the cutoff.
func (s *DB) DeleteEmails(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM mail_outbox WHERE created_at < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("delete emails: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete emails: %w", err)
	}
	return n, nil
}
