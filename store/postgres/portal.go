package postgres

import (
	"context"
	"encoding/json"
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
	return []any{p.ID, p.Name, string(urls), p.APIKeyHash, p.CertSHA256, p.MaxDocuments, p.MaxDocBytes,
		p.RatePerMin, p.CallbackURL, p.CallbackKey, p.Status, p.CreatedAt.UnixNano(), p.UpdatedAt.UnixNano()}, nil
}

func scanPortal(row scanner) (*store.Portal, error) {
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
	p.CreatedAt, p.UpdatedAt = fromNanos(&created), fromNanos(&updated)
	return &p, nil
}

// CreatePortal inserts a portal; ErrConflict if its ID, name or
// certificate is taken.
func (s *DB) CreatePortal(ctx context.Context, p *store.Portal) error {
	args, err := portalArgs(p)
	if err != nil {
		return fmt.Errorf("create portal: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO portals ("+portalColumns+") VALUES ("+placeholders(1, 13)+")", args...); err != nil {
		return fmt.Errorf("create portal %s: %w", p.ID, conflict(err))
	}
	return nil
}

// Portal returns a portal by ID.
func (s *DB) Portal(ctx context.Context, id string) (*store.Portal, error) {
	p, err := scanPortal(s.pool.QueryRow(ctx, "SELECT "+portalColumns+" FROM portals WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", id, notFound(err))
	}
	return p, nil
}

// PortalByCert returns the portal with the client certificate SHA-256.
func (s *DB) PortalByCert(ctx context.Context, sum []byte) (*store.Portal, error) {
	p, err := scanPortal(s.pool.QueryRow(ctx, "SELECT "+portalColumns+" FROM portals WHERE cert_sha256 = $1", sum))
	if err != nil {
		return nil, fmt.Errorf("portal by certificate: %w", notFound(err))
	}
	return p, nil
}

// Portals lists portals ordered by ID.
func (s *DB) Portals(ctx context.Context, after string, limit int) ([]*store.Portal, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, "SELECT "+portalColumns+" FROM portals WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("list portals: %w", err)
	}
	out, err := collect(rows, scanPortal)
	if err != nil {
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
	tag, err := s.pool.Exec(ctx, `UPDATE portals SET name = $1, redirect_urls = $2, api_key_hash = $3, cert_sha256 = $4,
		max_documents = $5, max_doc_bytes = $6, rate_per_min = $7, callback_url = $8, callback_key = $9, status = $10, updated_at = $11
		WHERE id = $12`, append(append([]any{}, args[1:11]...), args[12], p.ID)...)
	if err != nil {
		return fmt.Errorf("update portal %s: %w", p.ID, conflict(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("portal %s: %w", p.ID, store.ErrNotFound)
	}
	return nil
}
