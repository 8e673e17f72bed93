package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/store"
)

var _ store.PortalStore = (*DB)(nil)

const portalColumns = "id, name, redirect_urls, api_key_hash, cert_sha256, max_documents, max_doc_bytes, rate_per_min, callback_url, callback_key, status, created_at, updated_at"

func portalArgs(p *store.Portal) ([]any, error) {
	urls, err := json.Marshal(p.RedirectURLs)
	if err != nil {
		return nil, err
	}
	return []any{p.ID, p.Name, string(urls), nullBytes(p.APIKeyHash), nullBytes(p.CertSHA256), p.MaxDocuments, p.MaxDocBytes,
		p.RatePerMin, p.CallbackURL, nullBytes(p.CallbackKey), p.Status, p.CreatedAt.UnixNano(), p.UpdatedAt.UnixNano()}, nil
}

func scanPortal(row interface{ Scan(...any) error }) (*store.Portal, error) {
	var (
		p                store.Portal
		urls             string
		created, updated int64
	)
	if err := row.Scan(&p.ID, &p.Name, &urls, &p.APIKeyHash, &p.CertSHA256, &p.MaxDocuments, &p.MaxDocBytes, &p.RatePerMin,
		&p.CallbackURL, &p.CallbackKey, &p.Status, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(urls), &p.RedirectURLs); err != nil {
		return nil, fmt.Errorf("portal %s: redirect urls: %w", p.ID, err)
	}
	p.CreatedAt, p.UpdatedAt = txTime(sql.NullInt64{Int64: created, Valid: true}), txTime(sql.NullInt64{Int64: updated, Valid: true})
	return &p, nil
}

// nullBytes stores nil as NULL, so UNIQUE columns allow many portals
// without a certificate.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func txUnique(err error) bool {
	return uniqueViolation(err)
}

// CreatePortal inserts a portal; ErrConflict if its ID, name or
// certificate is taken.
func (s *DB) CreatePortal(ctx context.Context, p *store.Portal) error {
	args, err := portalArgs(p)
	if err != nil {
		return fmt.Errorf("create portal: %w", err)
	}
	_, err = s.write(ctx, "INSERT INTO portals ("+portalColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...)
	if txUnique(err) {
		return fmt.Errorf("create portal %s: %w", p.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create portal %s: %w", p.ID, err)
	}
	return nil
}

// Portal returns a portal by ID.
func (s *DB) Portal(ctx context.Context, id string) (*store.Portal, error) {
	p, err := scanPortal(s.queryRow(ctx, "SELECT "+portalColumns+" FROM portals WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("portal %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", id, err)
	}
	return p, nil
}

// PortalByCert returns the portal with the client certificate SHA-256.
func (s *DB) PortalByCert(ctx context.Context, sum []byte) (*store.Portal, error) {
	p, err := scanPortal(s.db.QueryRowContext(ctx, "SELECT "+portalColumns+" FROM portals WHERE cert_sha256 = ?", sum))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("portal by certificate: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("portal by certificate: %w", err)
	}
	return p, nil
}

// Portals lists portals ordered by ID.
func (s *DB) Portals(ctx context.Context, after string, limit int) ([]*store.Portal, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+portalColumns+" FROM portals WHERE id > ? ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	defer rows.Close()
	var out []*store.Portal
	for rows.Next() {
		p, err := scanPortal(rows)
		if err != nil {
			return nil, fmt.Errorf("list portals: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	return out, nil
}

// UpdatePortal stores p over the portal with its ID.
func (s *DB) UpdatePortal(ctx context.Context, p *store.Portal) error {
	args, err := portalArgs(p)
	if err != nil {
		return fmt.Errorf("update portal: %w", err)
	}
	res, err := s.write(ctx, `UPDATE portals SET name = ?, redirect_urls = ?, api_key_hash = ?, cert_sha256 = ?,
		max_documents = ?, max_doc_bytes = ?, rate_per_min = ?, callback_url = ?, callback_key = ?, status = ?, updated_at = ?
		WHERE id = ?`, append(append([]any{}, args[1:11]...), args[12], p.ID)...)
	if txUnique(err) {
		return fmt.Errorf("update portal %s: %w", p.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update portal %s: %w", p.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update portal %s: %w", p.ID, err)
	} else if n == 0 {
		return fmt.Errorf("portal %s: %w", p.ID, store.ErrNotFound)
	}
	return nil
}
