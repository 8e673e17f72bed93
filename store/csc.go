package store

import (
	"context"
	"time"
)

// CSCChallenge is the SMS one-time password a Cloud Signature Consortium
// API caller asked for with credentials/sendOTP. There is one per
// credential and caller; a new one replaces the last once it is spent or
// expired.
type CSCChallenge struct {
	ID           string // derived from credential and caller
	CredentialID string
	Caller       string
	CitizenID    string
	Hash         []byte // keyed hash of the code, never the code
	Sends        int    // SMS sent for this challenge, the first included
	Attempts     int    // legacy: wrong codes are counted by policy.Attempts on the holder's channel
	SentAt       time.Time
	ExpiresAt    time.Time
	UsedAt       time.Time // zero while unused
	LockedAt     time.Time // legacy: set by the per-caller count before policy.Attempts; such a challenge is spent
	CreatedAt    time.Time
}

// SAD is the state of one CSC signature activation data token: what it
// lets its caller sign with one credential, and what it has signed so far.
type SAD struct {
	ID            string // hex SHA-256 of the token; the token is never kept
	CredentialID  string
	Caller        string
	CitizenID     string
	KeyID         string
	HashAlgo      string // OID of the hash algorithm of Hashes
	NumSignatures int
	Used          int      // hashes signed so far
	Hashes        [][]byte // exactly the hashes the citizen authorised
	Spent         [][]byte // those of Hashes already signed
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// CSCStore persists the CSC API's OTP challenges and SADs. Every change
// that spends something is a conditional update, so two nodes sharing the
// store can never both spend the same thing.
type CSCStore interface {
	// PutCSCChallenge stores c. With prevCreated zero it inserts, and
	// returns ErrConflict if the ID exists; otherwise it replaces the row
	// only if its CreatedAt is still prevCreated (ErrConflict if not).
	PutCSCChallenge(ctx context.Context, c *CSCChallenge, prevCreated time.Time) error
	CSCChallenge(ctx context.Context, id string) (*CSCChallenge, error)
	// ResendCSCChallenge sets a new code hash and expiry and counts a send,
	// only while the challenge is unused, unlocked, has fewer than
	// maxSends sends and was last sent no later than notAfter; ErrConflict
	// otherwise.
	ResendCSCChallenge(ctx context.Context, id string, hash []byte, maxSends int, notAfter, at, expires time.Time) (*CSCChallenge, error)
	// UseCSCChallenge spends the challenge; ErrConflict if it was spent or
	// locked already.
	UseCSCChallenge(ctx context.Context, id string, at time.Time) error

	// CreateSAD stores a new SAD with its hashes; ErrConflict on a
	// duplicate ID or a hash listed twice.
	CreateSAD(ctx context.Context, s *SAD) error
	SAD(ctx context.Context, id string) (*SAD, error)
	// ReserveSAD marks every one of hashes used, or none: ErrConflict if
	// any is not in the SAD, already used, or listed twice, or the SAD has
	// expired at at.
	ReserveSAD(ctx context.Context, id string, hashes [][]byte, at time.Time) error
	// ReleaseSAD undoes a reservation whose signing failed.
	ReleaseSAD(ctx context.Context, id string, hashes [][]byte) error
	// DeleteExpiredSADs removes SADs that expired before the given time.
	DeleteExpiredSADs(ctx context.Context, before time.Time) (int64, error)
}
