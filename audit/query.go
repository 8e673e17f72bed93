package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

// Filter selects records for Query. Zero fields do not filter.
type Filter struct {
	Citizen string
	KeyID   string
	Portal  string
	Events  []Event
	From    time.Time // inclusive
	To      time.Time // exclusive
	// Cursor is where the page starts: 0, or the previous Page's Next.
	Cursor int64
	// Limit is the page size: 1 to 1000, default 100.
	Limit int
}

// MaxPage is the largest page Query returns.
const MaxPage = 1000

// Page is one page of query results.
type Page struct {
	Records []*Record
	// Next is the Cursor of the next page, 0 if this is the last.
	Next int64
}

// Query returns records matching f, oldest first, one page at a time.
// Records are decoded from the stored leaves, not from the query columns.
func (l *Log) Query(ctx context.Context, f Filter) (*Page, error) {
	return Query(ctx, l.st, f)
}

// Query runs a query on a store directly, for firmactl on a database file.
func Query(ctx context.Context, st store.AuditStore, f Filter) (*Page, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 0 || f.Limit > MaxPage {
		return nil, fmt.Errorf("query: %w: limit %d, want 1 to %d", ErrInvalid, f.Limit, MaxPage)
	}
	if f.Cursor < 0 {
		return nil, fmt.Errorf("query: %w: negative cursor", ErrInvalid)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, fmt.Errorf("query: %w: from must be before to", ErrInvalid)
	}
	sf := store.AuditFilter{Citizen: f.Citizen, KeyID: f.KeyID, Portal: f.Portal, From: f.From, To: f.To, Start: f.Cursor, Limit: f.Limit + 1}
	for _, e := range f.Events {
		if _, err := ParseEvent(string(e)); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		sf.Events = append(sf.Events, string(e))
	}
	rows, err := st.QueryAudit(ctx, sf)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	p := &Page{}
	if len(rows) > f.Limit {
		p.Next = rows[f.Limit].Index
		rows = rows[:f.Limit]
	}
	for _, r := range rows {
		rec, err := ParseRecord(r.Data)
		if err != nil {
			return nil, fmt.Errorf("query: record %d: %w (run audit verify)", r.Index, err)
		}
		p.Records = append(p.Records, rec)
	}
	return p, nil
}

// Usage is one line of a key-usage report.
type Usage = store.AuditUsage

// KeyUsage reports key use (signatures, failures, documents, first and
// last use) per citizen, portal and key in [from, to), for one citizen or
// one portal if given.
func (l *Log) KeyUsage(ctx context.Context, citizen, portal string, from, to time.Time) ([]*Usage, error) {
	return KeyUsage(ctx, l.st, citizen, portal, from, to)
}

// KeyUsage reports key use from a store directly.
func KeyUsage(ctx context.Context, st store.AuditStore, citizen, portal string, from, to time.Time) ([]*Usage, error) {
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return nil, fmt.Errorf("key usage: %w: from must be before to", ErrInvalid)
	}
	u, err := st.AuditKeyUsage(ctx, citizen, portal, from, to)
	if err != nil {
		return nil, fmt.Errorf("key usage: %w", err)
	}
	return u, nil
}
