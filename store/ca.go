package store

import (
	"context"
	"time"
)

// Authority is a certificate authority the service runs or relies on: the
// root and issuing CAs and the OCSP responder, each a certificate for a
// token key (or, for an external root, a certificate with no key here).
type Authority struct {
	Name      string // "root", "issuing", "ocsp"
	KeyID     string // keystore key ID; empty for an external root
	Cert      []byte // DER
	External  bool   // issued outside this service
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Certificate statuses.
const (
	CertPending = "pending" // key and CSR made, waiting for an external CA's certificate
	CertValid   = "valid"
	CertRevoked = "revoked"
	CertExpired = "expired"
)

// Certificate is an end-entity certificate issued for a citizen's key.
type Certificate struct {
	ID        string
	Owner     string // citizen DNI/NIE
	KeyID     string
	Serial    string // lower-case hex; empty while pending
	Issuer    string // authority name, or "external"
	Status    string
	Cert      []byte // DER; nil while pending
	CSR       []byte // DER, kept for external issuance
	NotBefore time.Time
	NotAfter  time.Time
	CreatedAt time.Time
	// RevokedAt and Reason are set once revoked; Reason is an RFC 5280
	// CRLReason code.
	RevokedAt    time.Time
	Reason       int
	SupersededBy string // ID of the certificate that replaced this one
}

// CertificateFilter selects certificates to list. Zero fields match all.
type CertificateFilter struct {
	Owner  string
	Status string
	After  string // certificate ID to start after
	Limit  int
}

// CRL is the latest certificate revocation list of an authority.
type CRL struct {
	Issuer     string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	DER        []byte
}

// CAStore persists authorities, issued certificates and CRLs.
type CAStore interface {
	// CreateAuthority stores a new authority; ErrConflict if the name is taken.
	CreateAuthority(ctx context.Context, a *Authority) error
	// ReplaceAuthority stores a new certificate and key for an existing
	// authority (OCSP responder rollover, external issuing CA import).
	ReplaceAuthority(ctx context.Context, a *Authority) error
	Authority(ctx context.Context, name string) (*Authority, error)

	// CreateCertificate stores a certificate record; ErrConflict if the
	// owner already has one in the same live status (valid or pending).
	CreateCertificate(ctx context.Context, c *Certificate) error
	Certificate(ctx context.Context, id string) (*Certificate, error)
	CertificateBySerial(ctx context.Context, issuer, serial string) (*Certificate, error)
	Certificates(ctx context.Context, f CertificateFilter) ([]*Certificate, error)
	// ReplaceCertificate stores next as the owner's valid certificate and
	// marks prev revoked (reason superseded) in one transaction. prev may be
	// empty. If next.ID exists as a pending record it is completed instead
	// of inserted.
	ReplaceCertificate(ctx context.Context, prev string, next *Certificate, at time.Time, reason int) error
	// RevokeCertificate marks a valid or pending certificate revoked;
	// ErrNotFound if there is no such live certificate.
	RevokeCertificate(ctx context.Context, id string, at time.Time, reason int) error
	// ExpireCertificate marks a valid certificate expired.
	ExpireCertificate(ctx context.Context, id string) error
	// RevokedCertificates lists an issuer's revoked certificates that have
	// not expired before notAfter (expired ones may leave the CRL).
	RevokedCertificates(ctx context.Context, issuer string, notAfter time.Time) ([]*Certificate, error)

	// NextCRLNumber allocates the next CRL number of an issuer.
	NextCRLNumber(ctx context.Context, issuer string) (int64, error)
	// SaveCRL stores crl unless a newer one (higher number) is stored.
	SaveCRL(ctx context.Context, crl *CRL) error
	LatestCRL(ctx context.Context, issuer string) (*CRL, error)
}
