package store

import (
	"context"
	"time"
)

// FireApp is a FIRe application: a portal known to FIRe clients by its
// appid, authenticated by a TLS client certificate whose DER digest is
// one of CertDigests.
type FireApp struct {
	AppID    string
	PortalID string
	// CertDigests are "sha1:<hex>", "sha256:<hex>" or "sha512:<hex>" of
	// the certificates' DER; several while a certificate is rotated.
	CertDigests []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// FireTransaction is what a FIRe client's view of a firma transaction
// adds to it: the redirect URLs as given (FIRe appends nothing to them),
// a batch's document ids in order, and which results were handed out,
// since FIRe hands each out once.
type FireTransaction struct {
	ID       string // the firma transaction's id
	AppID    string
	Subject  string // the citizen's DNI/NIE, normalised: every operation must name them
	Batch    bool
	OKURL    string
	ErrorURL string
	Upgrade  string // the level asked for at creation, as the client wrote it
	// Format and Algorithm are a batch's defaults for the documents added
	// to it: the FIRe format and algorithm names as the client wrote them.
	Format    string
	Algorithm string
	DocIDs    []string // a batch's docid of each document index
	// Recovered are the docids whose signatures were handed out (op 10).
	Recovered []string
	// ResultTaken is set once op 8 answered (a batch) or op 11 (one
	// signature).
	ResultTaken bool
	CreatedAt   time.Time
	ExpiresAt   time.Time
	// Version grows by one on every update; UpdateFireTransaction
	// succeeds only against the version read.
	Version int64
}

// FireStore persists FIRe applications and the FIRe side of transactions.
type FireStore interface {
	// PutFireApp creates or replaces the application with a.AppID;
	// ErrConflict if another application has that portal.
	PutFireApp(ctx context.Context, a *FireApp) error
	FireApp(ctx context.Context, appID string) (*FireApp, error)
	// FireAppPortal is FireApp and its portal in one query: a FIRe client
	// authenticates on every request, two dozen for a batch of ten.
	// ErrNotFound if either is missing.
	FireAppPortal(ctx context.Context, appID string) (*FireApp, *Portal, error)
	CreateFireTransaction(ctx context.Context, t *FireTransaction) error
	FireTransaction(ctx context.Context, id string) (*FireTransaction, error)
	// UpdateFireTransaction stores t if its stored version is t.Version,
	// then increments t.Version; ErrConflict otherwise, ErrNotFound if
	// it is gone.
	UpdateFireTransaction(ctx context.Context, t *FireTransaction) error
	// AddFireDocument is TransactionStore.AddDocument(t, d) and the
	// storing of ft.DocIDs (d's docid at d.Index) in one write: FIRe's
	// addDocumentToBatch. ErrConflict, and nothing stored, if t is no
	// longer a draft at t.Version or ft is no longer at ft.Version; on
	// success both versions grow by one.
	AddFireDocument(ctx context.Context, t *Transaction, d *Document, ft *FireTransaction) error
	// MarkFireRecovered adds docID to ft.Recovered, if ft is still at
	// ft.Version (ErrConflict otherwise, ErrNotFound if it is gone), and
	// increments ft.Version: FIRe's recoverBatchSign hands each
	// signature out once.
	MarkFireRecovered(ctx context.Context, ft *FireTransaction, docID string) error
	// DeleteFireTransaction forgets t and, with it, every answer still
	// to hand out; deleting a missing one is no error.
	DeleteFireTransaction(ctx context.Context, id string) error
	// PurgeFireTransactions deletes those that expired before t.
	PurgeFireTransactions(ctx context.Context, before time.Time) (int, error)
}
