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
