package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// outbox describes one of the sandbox outboxes (SMS, letters, e-mail):
// rows listed newest first, optionally for one recipient, and purged by
// age.
type outbox struct {
	table string
	cols  string // selected columns
	to    string // the column a listing filters on
	order string // tie-break after created_at DESC
	what  string // the noun in error messages
}

var (
	smsOutbox    = outbox{table: "sms_outbox", cols: "id, recipient, body, created_at", to: "recipient", order: "id DESC", what: "sms"}
	letterOutbox = outbox{table: "letter_outbox", cols: "id, citizen_id, address, body, created_at", to: "citizen_id", order: "id", what: "letters"}
	mailOutbox   = outbox{table: "mail_outbox", cols: "id, recipient, subject, body, created_at", to: "recipient", order: "id DESC", what: "emails"}
)

// listOutbox lists up to limit (default 100) rows of o, to one recipient
// if to is set, each read by scan.
func listOutbox[T any](ctx context.Context, s *DB, o outbox, to string, limit int, scan func(*sql.Rows) (*T, error)) ([]*T, error) {
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + o.cols + " FROM " + o.table
	var args []any
	if to != "" {
		q += " WHERE " + o.to + " = ?"
		args = append(args, to)
	}
	q += " ORDER BY created_at DESC, " + o.order + " LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", o.what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", o.what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", o.what, err)
	}
	return out, nil
}

// purgeOutbox deletes the rows of o created before the cutoff.
func (s *DB) purgeOutbox(ctx context.Context, o outbox, before time.Time) (int64, error) {
	res, err := s.write(ctx, "DELETE FROM "+o.table+" WHERE created_at < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", o.what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", o.what, err)
	}
	return n, nil
}
