package audit

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrCheckpoint means a checkpoint is malformed or its signature does not
// verify.
var ErrCheckpoint = errors.New("bad checkpoint")

// Timestamper gets RFC 3161 timestamp tokens: the TSA client satisfies it.
// It returns the DER TimeStampToken (a CMS ContentInfo) for digest, which
// was made with h.
type Timestamper interface {
	Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error)
}

// TimestamperFunc adapts a function to Timestamper.
type TimestamperFunc func(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error)

// Timestamp calls f.
func (f TimestamperFunc) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
	return f(ctx, h, digest)
}

var _ Timestamper = TimestamperFunc(nil)

// Checkpoint is a signed statement of the log's size and root hash.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Note is the signed note: the C2SP tlog-checkpoint text (origin, size,
	// base64 root hash, one per line) and its signature lines.
	Note []byte
	// Timestamp is a DER RFC 3161 TimeStampToken over SHA-256(Note), or
	// nil if no TSA was configured or it failed at the time.
	Timestamp []byte
	Time      time.Time
}

// checkpointText is the C2SP tlog-checkpoint body.
func checkpointText(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// signCheckpoint makes the signed note of a checkpoint.
func signCheckpoint(origin string, size int64, root tlog.Hash, s note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: checkpointText(origin, size, root)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint %d: %w", size, err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint with the given verifiers and
// parses it.
func OpenCheckpoint(signed []byte, v note.Verifiers) (*Checkpoint, error) {
	n, err := note.Open(signed, v)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrCheckpoint, err)
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return nil, err
	}
	c.Note = signed
	return c, nil
}

func parseCheckpointText(text string) (*Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return nil, fmt.Errorf("%w: want origin, size and root hash lines", ErrCheckpoint)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("%w: bad tree size %q", ErrCheckpoint, lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return nil, fmt.Errorf("%w: bad root hash", ErrCheckpoint)
	}
	c := &Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], h)
	return c, nil
}
