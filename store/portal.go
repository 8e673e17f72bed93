package store

import (
	"context"
	"time"
)

// Portal statuses.
const (
	PortalActive   = "active"
	PortalDisabled = "disabled"
)

// Portal is a relying party that asks citizens for signatures. Its API key
// is kept only as a SHA-256; the callback key is kept as given, since
// firmad signs callbacks with it.
type Portal struct {
	ID           string
	Name         string
	RedirectURLs []string // exact allow-list for OK and error URLs
	APIKeyHash   []byte   // SHA-256 of the API key; nil if the portal uses mTLS only
	CertSHA256   []byte   // SHA-256 of the client certificate DER; nil if none
	MaxDocuments int      // per transaction
	MaxDocBytes  int64    // per document
	RatePerMin   int      // transactions created per minute
	CallbackURL  string   // "" for none
	CallbackKey  []byte   // HMAC-SHA256 key for callbacks; nil without a callback
	Status       string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// PortalStore persists portals.
type PortalStore interface {
	// CreatePortal stores a new portal; ErrConflict if the ID, the name or
	// the certificate fingerprint is taken.
	CreatePortal(ctx context.Context, p *Portal) error
	Portal(ctx context.Context, id string) (*Portal, error)
	// PortalByCert finds the portal with the client certificate SHA-256.
	PortalByCert(ctx context.Context, sum []byte) (*Portal, error)
	// Portals lists portals ordered by ID after the ID after.
	Portals(ctx context.Context, after string, limit int) ([]*Portal, error)
	// UpdatePortal stores p over the portal with its ID; ErrNotFound if
	// none.
	UpdatePortal(ctx context.Context, p *Portal) error
}
