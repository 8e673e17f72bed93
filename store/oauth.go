package store

import (
	"context"
	"time"
)

// OAuth request statuses, in the order they are reached.
const (
	OAuthPushed    = "pushed"    // stored by PAR (or authorize), not yet signed in
	OAuthSignedIn  = "signed_in" // the citizen signed in on firma's page
	OAuthApproved  = "approved"  // the citizen approved with the SMS code; a code was issued
	OAuthRejected  = "rejected"  // the citizen said no
	OAuthExchanged = "exchanged" // the code was exchanged for a token

	// A service-scope access token (client_credentials) is kept as a
	// request of scope "service" in this status, its ID the token's hash.
	OAuthServiceToken = "service_token"
	OAuthRevoked      = "revoked" // a service token revoked by its client

	// A service-scope refresh token is kept the same way (ID its hash,
	// State its grant's ID) in OAuthRefresh until used once, then
	// OAuthRotated. The grant is a row of its own in OAuthServiceToken
	// (or OAuthRevoked) that every token it issued checks.
	OAuthRefresh = "refresh"
	OAuthRotated = "rotated"
)

// OAuthDigest is one document digest the citizen is asked to authorise.
type OAuthDigest struct {
	Hash  []byte `json:"hash"`
	Label string `json:"label"`
}

// OAuthRequest is one OAuth 2.0 authorisation request of the CSC API's
// authorisation server, from the pushed request to the code exchange.
// What the client asked is fixed when the request is stored; only the
// ceremony's fields change, each change a conditional update on Version.
type OAuthRequest struct {
	ID            string // random handle in request_uri and the consent page URL
	ClientID      string // the portal
	RedirectURI   string
	State         string
	CodeChallenge string // S256
	Scope         string // "credential" or "service"
	CredentialID  string
	HashAlgo      string // OID
	NumSignatures int
	Digests       []OAuthDigest
	Details       string // authorization_details as the client sent it (JSON), "" for scope=credential

	Status      string
	CitizenID   string // set at sign-in
	SessionHash []byte // the consent page session's hash
	CodeHash    []byte // the authorisation code's hash, set at approval
	Version     int
	CreatedAt   time.Time
	ExpiresAt   time.Time // the request, then the code, expires then
	UpdatedAt   time.Time
}

// OAuthStore persists OAuth authorisation requests.
type OAuthStore interface {
	// CreateOAuthRequest stores a new request with Version 1;
	// ErrConflict if the ID exists.
	CreateOAuthRequest(ctx context.Context, r *OAuthRequest) error
	// OAuthRequest returns a request by ID; ErrNotFound if none.
	OAuthRequest(ctx context.Context, id string) (*OAuthRequest, error)
	// UpdateOAuthRequest stores the ceremony's fields of r (Status,
	// CitizenID, SessionHash, CodeHash, ExpiresAt, UpdatedAt) only if the
	// stored Version is still r.Version, and bumps it (in r too);
	// ErrConflict if another update came first, ErrNotFound if none.
	UpdateOAuthRequest(ctx context.Context, r *OAuthRequest) error
	// DeleteExpiredOAuthRequests removes requests that expired before the
	// given time.
	DeleteExpiredOAuthRequests(ctx context.Context, before time.Time) (int64, error)
}
