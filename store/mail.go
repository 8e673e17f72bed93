package store

import (
	"context"
	"time"
)

// Email is a message kept by the outbox mail gateway instead of being
// sent: the sandbox's and the tests' way to read what citizens would get.
type Email struct {
	ID        string
	To        string
	Subject   string
	Text      string
	CreatedAt time.Time
}

// MailStore persists the mail outbox.
type MailStore interface {
	PutEmail(ctx context.Context, m *Email) error
	// Emails lists messages newest first, to one address if to is not
	// empty, at most limit of them (100 if limit <= 0).
	Emails(ctx context.Context, to string, limit int) ([]*Email, error)
	// DeleteEmails deletes messages created before the cutoff.
	DeleteEmails(ctx context.Context, before time.Time) (int64, error)
}
