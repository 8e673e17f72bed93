package store

import (
	"context"
	"errors"
	"time"
)

// ErrRateLimited is returned by CreateTransaction when the portal has
// created its allowance of transactions in the last minute.
var ErrRateLimited = errors.New("transaction rate limit reached")

// Transaction is a signature request from a portal to a citizen, with its
// state and one-time-password bookkeeping. Secrets (the citizen's session
// and the OTP) are kept only as keyed hashes.
type Transaction struct {
	ID             string
	PortalID       string
	CitizenID      string
	State          string
	StopOnError    bool
	Level          string // CAdES/PAdES baseline level: B-B, B-T, B-LT or B-LTA
	OKURL          string
	ErrorURL       string
	IdempotencyKey string // "" for none
	RequestHash    []byte // SHA-256 of the creation request, to refuse a reused key with another body
	ApprovalDigest []byte

	SessionHash  []byte // citizen browser session after authentication
	OTPHash      []byte
	OTPExpiresAt time.Time
	OTPSends     int
	OTPSentAt    time.Time
	OTPTries     int // wrong codes entered

	CertificateID string
	KeyID         string

	Summary      string // all_signed, some_failed, all_failed once done
	ErrorCode    string
	ErrorMessage string

	CreatedAt       time.Time
	UpdatedAt       time.Time
	ExpiresAt       time.Time
	AuthenticatedAt time.Time
	ApprovedAt      time.Time
	EndedAt         time.Time

	// Callback delivery: "" (no callback), "pending", "delivered" or
	// "failed" (given up after retries).
	CallbackState    string
	CallbackAttempts int
	CallbackNextAt   time.Time
	CallbackError    string

	// Version grows by one on every update; UpdateTransaction succeeds only
	// against the version read, so two nodes never both make a step.
	Version int64
}

// Document is one document of a transaction and, once processed, its
// result.
type Document struct {
	TransactionID string
	Index         int
	Name          string
	MediaType     string
	Format        string // raw, cades, pades
	Hash          string // sha256, sha384, sha512
	Digest        []byte
	Content       []byte // the whole document; nil when only the digest was given
	Size          int64  // of the content, 0 for digest-only documents
	Status        string // pending, signed, not_processed, aborted, failed
	ErrorCode     string
	Error         string
	Result        []byte // signature, CMS or signed PDF
	Timestamped   bool
	// TimestampToken is the RFC 3161 token in a B-T signature (DER), and
	// TimestampedAt its time; empty otherwise.
	TimestampToken []byte
	TimestampedAt  time.Time
	SignedAt       time.Time
	// SignOptions is how the document is to be signed beyond its format,
	// as the transaction package encodes it (operation, the existing
	// signature for cosign and countersign, policy, attached); nil for a
	// plain signature. Read with the content (full).
	SignOptions []byte
	// Appearance is the visible PAdES signature asked for (JSON, opaque
	// to the store), nil for an invisible one. Written with the document,
	// read with Documents(full), emptied by PurgeDocuments.
	Appearance []byte
}

// TransactionFilter selects transactions to list, ordered by ID. Zero
// fields match all.
type TransactionFilter struct {
	PortalID  string
	CitizenID string
	State     string
	After     string
	Limit     int
}

// TransactionStore persists transactions and their documents.
type TransactionStore interface {
	// CreateTransaction stores t and its documents in one transaction,
	// unless the portal already created ratePerMin transactions in the
	// minute before t.CreatedAt (ErrRateLimited; 0 means no limit) or
	// the portal already used t.IdempotencyKey (ErrConflict).
	CreateTransaction(ctx context.Context, t *Transaction, docs []*Document, ratePerMin int) error
	Transaction(ctx context.Context, id string) (*Transaction, error)
	TransactionByIdempotencyKey(ctx context.Context, portalID, key string) (*Transaction, error)
	Transactions(ctx context.Context, f TransactionFilter) ([]*Transaction, error)
	// UpdateTransaction stores t (its mutable fields, the approval digest
	// included) if the stored version is still
	// t.Version, and increments t.Version; ErrConflict if another update
	// came first, ErrNotFound if there is no such transaction.
	UpdateTransaction(ctx context.Context, t *Transaction) error
	// Documents lists a transaction's documents in order, with their
	// content and result only if full.
	Documents(ctx context.Context, txID string, full bool) ([]*Document, error)
	// AddDocument adds d to the open batch t, if t is still a draft at
	// t.Version (ErrConflict otherwise), and increments t.Version.
	AddDocument(ctx context.Context, t *Transaction, d *Document) error
	// UpdateDocument stores d's status, error and result if the stored
	// status is still from; ErrConflict otherwise.
	UpdateDocument(ctx context.Context, d *Document, from string) error
	// UpdateDocuments is UpdateDocument for many documents in one write;
	// those whose status is no longer from are skipped, and their indexes
	// returned.
	UpdateDocuments(ctx context.Context, docs []*Document, from string) ([]int, error)
	// TransactionsDue lists transactions in one of states whose ExpiresAt
	// is before before (zero before: any), oldest first.
	TransactionsDue(ctx context.Context, states []string, before time.Time, limit int) ([]*Transaction, error)
	// PurgeDocuments deletes the content, result and timestamp token of
	// the documents of transactions that ended before endedBefore (their
	// digests and outcomes stay), at most limit transactions' worth, and
	// returns how many documents it emptied.
	PurgeDocuments(ctx context.Context, endedBefore time.Time, limit int) (int64, error)
	// CallbacksDue lists transactions with a pending callback due by now.
	CallbacksDue(ctx context.Context, now time.Time, limit int) ([]*Transaction, error)
}
