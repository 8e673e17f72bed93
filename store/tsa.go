package store

import (
	"context"
	"time"
)

// TSAUnit is one time-stamping unit of the built-in TSA: its HSM key and
// the certificate the CA issued for it.
type TSAUnit struct {
	Name  string // "default" unless several units run side by side
	KeyID string // keystore key ID (token mode)
	Cert  []byte // DER of the TSA certificate
	// KeySince is when KeyID entered service (column created_at): the
	// start of its usage period, reset by a key rollover.
	KeySince  time.Time
	UpdatedAt time.Time
}

// TSAStore persists the built-in TSA's units and serial-number sequences.
type TSAStore interface {
	// CreateTSAUnit stores a new unit; ErrConflict if the name is taken.
	CreateTSAUnit(ctx context.Context, u *TSAUnit) error
	// ReplaceTSAUnit stores a new key and certificate for an existing unit
	// (certificate renewal or key rollover) if its key is still prevKeyID:
	// ErrConflict if another process replaced it first, ErrNotFound if
	// there is no such unit.
	ReplaceTSAUnit(ctx context.Context, u *TSAUnit, prevKeyID string) error
	TSAUnit(ctx context.Context, name string) (*TSAUnit, error)

	// AllocTSASerials reserves n consecutive serial numbers of the named
	// sequence and returns the first. Every call, from any process sharing
	// the database, gets numbers above all numbers handed out before; the
	// reservation is committed before it returns, so numbers a process
	// reserved but did not use are skipped, never reused.
	AllocTSASerials(ctx context.Context, sequence string, n int64) (int64, error)
}

// TSAIssuance is one token of the built-in TSA in its issuance log: what
// an auditor needs to tie the token to the audit log's summary of its
// interval, and nothing secret. The token itself is not kept, only its
// hash: the requester holds it.
type TSAIssuance struct {
	Serial int64
	// Interval is the activation ID of the audit interval the token was
	// signed under: the key.activated record that opened it and the
	// key.used summary that closed it carry it as their activation.
	Interval    string
	KeyID       string
	IssuedAt    time.Time // the token's genTime
	TokenHash   []byte    // SHA-256 of the DER TimeStampToken
	ImprintHash string    // the message imprint's hash, "sha-256", "sha-384" or "sha-512"
	Policy      string    // the TSA policy OID, dotted
	// Client is the requester's rate-limit key (its IP address) for HTTP
	// requests, "" for tokens the service asked for itself (CAdES and
	// PAdES B-T, audit checkpoints).
	Client string
}

// TSAIssuanceStore is the built-in TSA's issuance log.
type TSAIssuanceStore interface {
	// AddTSAIssuance stores one token's row before the token is handed
	// out; ErrConflict if the interval already holds the serial.
	AddTSAIssuance(ctx context.Context, r *TSAIssuance) error
	// TSAIssuances lists an interval's rows by serial, ascending.
	TSAIssuances(ctx context.Context, interval string) ([]*TSAIssuance, error)
}

// TSAIssuanceBatchStore is an issuance log that stores several rows in
// one commit: the built-in TSA gathers the rows of tokens signed at the
// same time, so that concurrent requests share one write instead of
// queueing behind the database's single writer one by one.
type TSAIssuanceBatchStore interface {
	TSAIssuanceStore
	// AddTSAIssuances stores rs in one transaction, all or none;
	// ErrConflict if an interval already holds one of the serials.
	AddTSAIssuances(ctx context.Context, rs []*TSAIssuance) error
}
