package portal

import (
	"context"

	"github.com/firma-cloud/firma/store"
)

// Authenticator finds the portal behind a credential: an API key, or the
// SHA-256 of a client certificate the TLS layer verified. *Registry is
// one; every way in for portals (REST, CSC, gRPC) takes one.
type Authenticator interface {
	AuthenticateAPIKey(ctx context.Context, key string) (*store.Portal, error)
	AuthenticateCert(ctx context.Context, sum []byte) (*store.Portal, error)
}

var _ Authenticator = (*Registry)(nil)
