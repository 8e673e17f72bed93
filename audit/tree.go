package audit

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/store"
)

// ErrNoSigner means this log was opened without a checkpoint signer.
var ErrNoSigner = errs.Sentinel(errs.FailedPrecondition, "audit_signer_missing", "audit log has no checkpoint signer")

// ErrRange means a proof was asked for sizes or indexes outside the log.
var ErrRange = errs.Sentinel(errs.OutOfRange, "out_of_range", "out of range")

// Checkpoint signs a checkpoint of the log as it is now, timestamps it and
// stores it. If the latest stored checkpoint already covers the current
// size, or all that was added since is the record of that checkpoint's own
// timestamp, it returns the latest instead of signing again.
func (l *Log) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if l.opt.Signer == nil {
		return nil, ErrNoSigner
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	size := l.Size()
	if latest, err := l.st.LatestAuditCheckpoint(ctx); err == nil && (latest.Size >= size || size == l.selfSize) {
		return l.openStored(latest)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	root, err := tlog.TreeHash(size, l.hashReader(ctx))
	if err != nil {
		l.m.checkpoints.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("checkpoint %d: tree hash: %w", size, err)
	}
	signed, err := signCheckpoint(l.opt.Origin, size, root, l.opt.Signer)
	if err != nil {
		l.m.checkpoints.WithLabelValues("error").Inc()
		return nil, err
	}
	c := &Checkpoint{Origin: l.opt.Origin, Size: size, Root: root, Note: signed, Time: l.opt.Now().UTC()}
	result := "ok"
	if l.opt.Timestamper != nil {
		d := sha256.Sum256(signed)
		tok, err := l.opt.Timestamper.Timestamp(ctx, crypto.SHA256, d[:])
		if err != nil {
			// A signed checkpoint without a timestamp still proves the
			// log; losing it to a TSA outage would be worse.
			l.log.Warn("audit checkpoint not timestamped", "size", size, "err", err)
			result = "untimestamped"
		} else {
			c.Timestamp = tok
		}
		l.selfSize = -1
		if l.Size() == size+1 {
			l.selfSize = size + 1
		}
	}
	err = l.st.AddAuditCheckpoint(ctx, &store.AuditCheckpoint{Size: size, Note: signed, Timestamp: c.Timestamp, CreatedAt: c.Time})
	if err != nil {
		l.m.checkpoints.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("checkpoint %d: %w", size, err)
	}
	l.m.checkpoints.WithLabelValues(result).Inc()
	l.m.lastCP.Set(float64(c.Time.Unix()))
	l.log.Info("audit checkpoint signed", "size", size, "root", root.String())
	return c, nil
}

func (l *Log) openStored(sc *store.AuditCheckpoint) (*Checkpoint, error) {
	c, err := ParseSignedCheckpoint(sc.Note)
	if err != nil {
		return nil, err
	}
	c.Timestamp, c.Time = sc.Timestamp, sc.CreatedAt
	return c, nil
}

// RunCheckpoints signs a checkpoint every interval until ctx is done, and
// a last one then, so a clean shutdown leaves every record covered.
func (l *Log) RunCheckpoints(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := l.Checkpoint(fctx); err != nil {
				l.log.Error("final audit checkpoint", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if _, err := l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				l.log.Error("audit checkpoint", "err", err)
			}
		}
	}
}

// Latest returns the latest stored checkpoint, store.ErrNotFound if none.
func (l *Log) Latest(ctx context.Context) (*Checkpoint, error) {
	sc, err := l.st.LatestAuditCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	return l.openStored(sc)
}

// ParseSignedCheckpoint parses a signed checkpoint without checking its
// signature: for a log reading back what it signed itself. Anyone else
// uses OpenCheckpoint.
func ParseSignedCheckpoint(signed []byte) (*Checkpoint, error) {
	text, _, ok := cutNote(signed)
	if !ok {
		return nil, fmt.Errorf("%w: not a signed note", ErrCheckpoint)
	}
	c, err := parseCheckpointText(text)
	if err != nil {
		return nil, err
	}
	c.Note = signed
	return c, nil
}

// cutNote splits a signed note at the blank line before its signatures.
func cutNote(signed []byte) (string, string, bool) {
	s := string(signed)
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\n' && s[i+1] == '\n' {
			return s[:i+1], s[i+2:], true
		}
	}
	return "", "", false
}

// InclusionProof proves that record index is in the tree of the given
// size: check it with tlog.CheckRecord against that size's root hash and the
// record's leaf hash.
func (l *Log) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	if size > l.Size() || index < 0 || index >= size {
		return nil, fmt.Errorf("inclusion proof of %d in %d (log size %d): %w", index, size, l.Size(), ErrRange)
	}
	p, err := tlog.ProveRecord(size, index, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, size, err)
	}
	return p, nil
}

// ConsistencyProof proves that the tree of size newSize extends the tree
// of size oldSize: check it with tlog.CheckTree against both roots.
func (l *Log) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	if newSize > l.Size() || oldSize < 1 || oldSize > newSize {
		return nil, fmt.Errorf("consistency proof %d to %d (log size %d): %w", oldSize, newSize, l.Size(), ErrRange)
	}
	p, err := tlog.ProveTree(newSize, oldSize, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d to %d: %w", oldSize, newSize, err)
	}
	return p, nil
}

// TreeHash returns the root hash of the log's first size records.
func (l *Log) TreeHash(ctx context.Context, size int64) (tlog.Hash, error) {
	if size > l.Size() || size < 0 {
		return tlog.Hash{}, fmt.Errorf("tree hash of %d (log size %d): %w", size, l.Size(), ErrRange)
	}
	h, err := tlog.TreeHash(size, l.hashReader(ctx))
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("tree hash of %d: %w", size, err)
	}
	return h, nil
}

// VerifyInclusion checks an inclusion proof of leaf (a record's canonical
// JSON) at index in a checkpoint.
func VerifyInclusion(c *Checkpoint, index int64, leaf []byte, p tlog.RecordProof) error {
	if err := tlog.CheckRecord(p, c.Size, c.Root, index, tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("record %d not in checkpoint %d: %w", index, c.Size, err)
	}
	return nil
}

// VerifyConsistency checks that checkpoint newer extends checkpoint older.
func VerifyConsistency(older, newer *Checkpoint, p tlog.TreeProof) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("checkpoints of different logs %q and %q: %w", older.Origin, newer.Origin, ErrCheckpoint)
	}
	if err := tlog.CheckTree(p, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("checkpoint %d does not extend %d: %w", newer.Size, older.Size, err)
	}
	return nil
}
