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
	_, err := s.write(ctx, "INSERT INTO mail_outbox (id, recipient, subject, body, created_at) VALUES (?, ?, ?, ?, ?)",
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
	return listOutbox(ctx, s, mailOutbox, to, limit, func(rows *sql.Rows) (*store.Email, error) {
		var (
			m       store.Email
			created sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.Text, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = regTime(created)
		return &m, nil
	})
}

// DeleteEmails deletes outbox messages created before the cutoff.
func (s *DB) DeleteEmails(ctx context.Context, before time.Time) (int64, error) {
	return s.purgeOutbox(ctx, mailOutbox, before)
}
