package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/store"
)

// ExportFormat names the export format in its header line.
const ExportFormat = "firma-audit-export/1"

// An export is JSON lines: one header, then every checkpoint by size, then
// every record up to the largest checkpoint, by index.
type exportLine struct {
	Type string `json:"type"` // header, checkpoint, record

	// header
	Format     string    `json:"format,omitempty"`
	Origin     string    `json:"origin,omitempty"`
	ExportedAt time.Time `json:"exported_at,omitzero"`
	LogSize    int64     `json:"log_size,omitempty"` // records in the log when exported

	// checkpoint
	Note      string `json:"note,omitempty"`
	Timestamp []byte `json:"timestamp,omitempty"` // DER RFC 3161 token

	// record. Hash is the leaf hash the log stored when it appended the
	// record: a hint the verifier checks against the signed tree, which
	// lets it name the first bad record rather than just reject the tree.
	Index  *int64          `json:"index,omitempty"`
	Hash   *tlog.Hash      `json:"hash,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`
	Raw    *string         `json:"raw,omitempty"` // a stored record that is not even JSON
}

// exportChunk is how many records an export reads from the store at once.
const exportChunk = 1000

// Export writes the log as JSON lines: checkpoints, then the records the
// latest checkpoint covers. If this log can sign, it first signs a fresh
// checkpoint so the export covers every record committed so far.
//
// Export copies what is stored, tampered or not, so that VerifyExport can
// tell what was changed.
func (l *Log) Export(ctx context.Context, w io.Writer) error {
	if l.opt.Signer != nil {
		if _, err := l.Checkpoint(ctx); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return export(ctx, l.st, l.opt.Origin, l.opt.Now(), w)
}

// ExportStore writes an export of the log in st as it is, without signing
// a new checkpoint: for firmactl on a database file.
func ExportStore(ctx context.Context, st store.AuditStore, w io.Writer) error {
	return export(ctx, st, "", time.Now(), w)
}

func export(ctx context.Context, st store.AuditStore, origin string, now time.Time, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // keep record bytes exactly as hashed
	logSize, err := st.AuditSize(ctx)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var cps []*store.AuditCheckpoint
	for after := int64(-1); ; {
		page, err := st.AuditCheckpoints(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if len(page) == 0 {
			break
		}
		cps = append(cps, page...)
		after = page[len(page)-1].Size
	}
	var size int64
	if len(cps) > 0 {
		size = cps[len(cps)-1].Size
		if origin == "" {
			if c, err := ParseSignedCheckpoint(cps[len(cps)-1].Note); err == nil {
				origin = c.Origin
			}
		}
	}
	if err := enc.Encode(exportLine{Type: "header", Format: ExportFormat, Origin: origin, ExportedAt: now.UTC(), LogSize: logSize}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, c := range cps {
		if err := enc.Encode(exportLine{Type: "checkpoint", Note: string(c.Note), Timestamp: c.Timestamp}); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	for from := int64(0); from < size; from += exportChunk {
		to := min(from+exportChunk, size)
		recs, err := st.AuditRecords(ctx, from, to)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		hints, err := leafHashes(ctx, st, recs)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for i, r := range recs {
			line := exportLine{Type: "record", Index: &r.Index, Hash: hints[i]}
			if json.Valid(r.Data) {
				line.Record = r.Data
			} else {
				s := string(r.Data)
				line.Raw = &s
			}
			if err := enc.Encode(line); err != nil {
				return fmt.Errorf("export record %d: %w", r.Index, err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// leafHashes returns the stored leaf hash of each record, nil where the
// store has none.
func leafHashes(ctx context.Context, st store.AuditStore, recs []*store.AuditRecord) ([]*tlog.Hash, error) {
	idx := make([]int64, len(recs))
	for i, r := range recs {
		idx[i] = tlog.StoredHashIndex(0, r.Index)
	}
	out := make([]*tlog.Hash, len(recs))
	got, err := st.AuditHashes(ctx, idx)
	if err == nil {
		for i := range got {
			h := tlog.Hash(got[i])
			out[i] = &h
		}
		return out, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// Some are missing (the store was tampered with): fetch one by one so
	// the export still shows the rest.
	for i, x := range idx {
		got, err := st.AuditHashes(ctx, []int64{x})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h := tlog.Hash(got[0])
		out[i] = &h
	}
	return out, nil
}
