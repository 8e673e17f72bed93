package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.OAuthStore = (*DB)(nil)

const oauthColumns = "id, client_id, redirect_uri, state, code_challenge, scope, credential_id, hash_algo, num_signatures, digests, details, " +
	"status, citizen_id, session_hash, code_hash, version, created_at, expires_at, updated_at"

func oauthScan(row interface{ Scan(...any) error }) (*store.OAuthRequest, error) {
	var (
		r                         store.OAuthRequest
		digests                   string
		created, expires, updated int64
	)
	if err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.CodeChallenge, &r.Scope, &r.CredentialID, &r.HashAlgo,
		&r.NumSignatures, &digests, &r.Details, &r.Status, &r.CitizenID, &r.SessionHash, &r.CodeHash, &r.Version,
		&created, &expires, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(digests), &r.Digests); err != nil {
		return nil, fmt.Errorf("oauth request %s digests: %w", r.ID, err)
	}
	r.CreatedAt, r.ExpiresAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC(), time.Unix(0, updated).UTC()
	return &r, nil
}

// CreateOAuthRequest stores a new request.
func (s *DB) CreateOAuthRequest(ctx context.Context, r *store.OAuthRequest) error {
	digests, err := json.Marshal(r.Digests)
	if err != nil {
		return fmt.Errorf("create oauth request: %w", err)
	}
	if r.Digests == nil {
		digests = []byte("[]")
	}
	r.Version = 1
	_, err = s.write(ctx, "INSERT INTO oauth_requests ("+oauthColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		r.ID, r.ClientID, r.RedirectURI, r.State, r.CodeChallenge, r.Scope, r.CredentialID, r.HashAlgo, r.NumSignatures, string(digests), r.Details,
		r.Status, r.CitizenID, r.SessionHash, r.CodeHash, r.Version, r.CreatedAt.UnixNano(), r.ExpiresAt.UnixNano(), r.UpdatedAt.UnixNano())
	if regUnique(err) {
		return fmt.Errorf("create oauth request: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create oauth request: %w", err)
	}
	return nil
}

// OAuthRequest returns a request by ID.
func (s *DB) OAuthRequest(ctx context.Context, id string) (*store.OAuthRequest, error) {
	r, err := oauthScan(s.db.QueryRowContext(ctx, "SELECT "+oauthColumns+" FROM oauth_requests WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("oauth request: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("oauth request: %w", err)
	}
	return r, nil
}

// UpdateOAuthRequest stores the ceremony's fields if the version matches.
func (s *DB) UpdateOAuthRequest(ctx context.Context, r *store.OAuthRequest) error {
	res, err := s.write(ctx, `UPDATE oauth_requests SET status = ?, citizen_id = ?, session_hash = ?, code_hash = ?,
		expires_at = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
		r.Status, r.CitizenID, r.SessionHash, r.CodeHash, r.ExpiresAt.UnixNano(), r.UpdatedAt.UnixNano(), r.ID, r.Version)
	if err != nil {
		return fmt.Errorf("update oauth request: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update oauth request: %w", err)
	} else if n == 0 {
		if _, err := s.OAuthRequest(ctx, r.ID); err != nil {
			return err
		}
		return fmt.Errorf("update oauth request: %w", store.ErrConflict)
	}
	r.Version++
	return nil
}

// DeleteExpiredOAuthRequests removes requests expired before the time.
func (s *DB) DeleteExpiredOAuthRequests(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.write(ctx, "DELETE FROM oauth_requests WHERE expires_at < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("delete expired oauth requests: %w", err)
	}
	return res.RowsAffected()
}
