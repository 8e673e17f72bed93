package store

import (
	"context"
	"time"

	"github.com/firma-cloud/firma/errs"
)

// Sentinel errors every backend returns, wrapped, so callers can tell them
// apart with errors.Is.
var (
	ErrNotFound = errs.Sentinel(errs.NotFound, "not_found", "not found")
	ErrConflict = errs.Sentinel(errs.Conflict, "conflict", "already exists")
)

// Key is the persisted record of one key pair held for an owner.
//
// In token mode the private key is a token object found by ID; in wrapped
// mode Wrapped holds it encrypted under the token's key-encryption key.
type Key struct {
	ID          string
	Owner       string
	Type        string
	Mode        string
	PublicKey   []byte // PKIX DER
	Wrapped     []byte // nil in token mode and once destroyed
	CreatedAt   time.Time
	DestroyedAt time.Time // zero while the key is live
}

// Destroyed reports whether the key has been destroyed.
func (k *Key) Destroyed() bool { return !k.DestroyedAt.IsZero() }

// KeyRecordStore persists key records.
type KeyRecordStore interface {
	CreateKey(ctx context.Context, k *Key) error
	Key(ctx context.Context, id string) (*Key, error)
	// Keys lists keys ordered by ID, those of owner only if it is not
	// empty, starting after the ID after, at most limit of them.
	Keys(ctx context.Context, owner, after string, limit int) ([]*Key, error)
	// DestroyKey marks the key destroyed at the given time and erases its
	// wrapped blob.
	DestroyKey(ctx context.Context, id string, at time.Time) error
}

// Store is everything firmad persists.
type Store interface {
	KeyRecordStore
	TSAStore
	TSAIssuanceStore
	RegistryStore
	SMSStore
	MailStore
	PortalStore
	TransactionStore
	CAStore
	AuditStore
	CSCStore
	OAuthStore
	AttemptStore
	FireStore
	Ping(ctx context.Context) error
	Close() error
}
