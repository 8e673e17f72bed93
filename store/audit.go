package store

import (
	"context"
	"fmt"
	"time"
)

// AuditRecord is one leaf of the audit log as persisted: the exact bytes
// that were hashed (Data) plus copies of the fields queries filter on.
//
// Data is the only source of truth: verification hashes it and checks the
// copied fields against it, so editing either is detected.
type AuditRecord struct {
	Index     int64
	Time      time.Time
	Event     string
	Outcome   string
	ActorRole string
	ActorID   string
	Citizen   string
	Portal    string
	KeyID     string
	RequestID string
	Documents int // number of document digests in the record
	Data      []byte
}

// AuditHash is one stored hash of the audit Merkle tree, at its
// tlog.StoredHashIndex position.
type AuditHash struct {
	Index int64
	Hash  [32]byte
}

// AuditCheckpoint is a signed tree head of the audit log.
type AuditCheckpoint struct {
	Size      int64
	Note      []byte // signed note: origin, size, root hash and signatures
	Timestamp []byte // DER RFC 3161 TimeStampToken over SHA-256(Note); nil if none
	CreatedAt time.Time
}

// AuditFilter selects audit records. Zero fields do not filter.
type AuditFilter struct {
	Citizen string
	KeyID   string
	Portal  string
	Events  []string
	From    time.Time // inclusive
	To      time.Time // exclusive
	Start   int64     // first index to consider: 0, or the last page's last Index+1
	Limit   int       // at most this many; 0 means 100
}

// AuditUsage is one line of a key-usage report: how often a key was used for
// one citizen and portal in a time range.
type AuditUsage struct {
	Citizen    string
	Portal     string
	KeyID      string
	Signatures int64 // successful key.used records
	Failures   int64 // key.used records whose outcome was not success
	Documents  int64 // document digests in successful records
	First      time.Time
	Last       time.Time
}

// AuditStore persists the append-only audit log. No method changes or
// removes what was appended.
type AuditStore interface {
	// AppendAudit stores records and the tree hashes they add in one
	// transaction. recs must continue the log exactly (the first Index
	// equal to the current size); otherwise it returns ErrConflict and
	// stores nothing. Once it returns, the records survive a crash of the
	// process; with flush they are also on stable storage, surviving a
	// crash of the machine (SQLite synchronous=FULL, PostgreSQL
	// synchronous_commit=on for the transaction).
	AppendAudit(ctx context.Context, recs []*AuditRecord, hashes []AuditHash, flush bool) error
	// AuditSize returns the number of records in the log.
	AuditSize(ctx context.Context) (int64, error)
	// AuditHashes returns the stored hashes at the given indexes, in order;
	// ErrNotFound if one is missing.
	AuditHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	// AuditRecords returns records with from <= Index < to in index order
	// (fewer if some are missing: the caller checks).
	AuditRecords(ctx context.Context, from, to int64) ([]*AuditRecord, error)
	// QueryAudit returns records matching f in index order.
	QueryAudit(ctx context.Context, f AuditFilter) ([]*AuditRecord, error)
	// AddAuditCheckpoint stores a checkpoint; ErrConflict if one of that
	// size exists.
	AddAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// AuditCheckpoints lists checkpoints with Size > after, by size.
	AuditCheckpoints(ctx context.Context, after int64, limit int) ([]*AuditCheckpoint, error)
	// LatestAuditCheckpoint returns the largest checkpoint, ErrNotFound if
	// none.
	LatestAuditCheckpoint(ctx context.Context) (*AuditCheckpoint, error)
	// AuditKeyUsage summarises "key.used" records in [from, to) per citizen,
	// portal and key, for one citizen or portal if given.
	AuditKeyUsage(ctx context.Context, citizen, portal string, from, to time.Time) ([]*AuditUsage, error)
	// AuditCursor returns where the named reader of the log is: the next
	// index it will read, -1 if it never saved one.
	AuditCursor(ctx context.Context, name string) (int64, error)
	// SetAuditCursor saves the named reader's position.
	SetAuditCursor(ctx context.Context, name string, position int64) error
}

// AuditHashesInOrder returns the hashes a backend read, by index, in the
// order of indexes: what AuditHashes returns. ErrNotFound names the first
// index missing or not 32 bytes long.
func AuditHashesInOrder(indexes []int64, got map[int64][]byte) ([][32]byte, error) {
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		h, ok := got[x]
		if !ok || len(h) != 32 {
			return nil, fmt.Errorf("audit hash %d: %w", x, ErrNotFound)
		}
		copy(out[i][:], h)
	}
	return out, nil
}
