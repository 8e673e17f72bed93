package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/store"
)

// ErrTampered means verification found the log altered; the error is a
// *TamperError naming the first bad record.
var ErrTampered = errors.New("audit log tampered with")

// ErrExport means an export file is not in the export format at all.
var ErrExport = errors.New("malformed audit export")

// TamperError says where verification first found the log altered.
type TamperError struct {
	// Index is the first bad record, or -1 if the problem is with a
	// checkpoint rather than a record.
	Index int64
	// Event is that record's event type, if it could be read.
	Event   Event
	Problem string
}

func (e *TamperError) Error() string {
	switch {
	case e.Index < 0:
		return "audit log tampered with: " + e.Problem
	case e.Event != "":
		return fmt.Sprintf("audit log tampered with: first bad record is %d (%s): %s", e.Index, e.Event, e.Problem)
	}
	return fmt.Sprintf("audit log tampered with: first bad record is %d: %s", e.Index, e.Problem)
}

// Unwrap makes errors.Is(err, ErrTampered) hold.
func (e *TamperError) Unwrap() error { return ErrTampered }

// Report describes a log that verified.
type Report struct {
	Origin      string
	Records     int64     // records checked
	Size        int64     // size of the largest checkpoint they match
	Root        tlog.Hash // its root hash
	Checkpoints int       // checkpoints whose signature and tree verified
	Trusted     int       // of which passed in by the caller
	Timestamped int       // checkpoints that carry an RFC 3161 token
	// LastTimestamp is the latest timestamp time, when tokens were
	// verified (VerifyOptions.CheckTimestamp).
	LastTimestamp time.Time
	// Unsigned is how many records the log held beyond the largest
	// checkpoint when exported: they are not proven until the next one.
	Unsigned int64
	// Activations counts key.activated records: decisions to use a key.
	Activations int
	// KeyChanges counts key.generate_requested and key.destroy_requested
	// records: decisions to make or destroy a key.
	KeyChanges int
	// Unfinished lists the decisions with no result after them (no
	// key.used, key.generated or key.destroyed): a crash, or a fault that
	// also stopped the result's record, came between the two. The key may
	// or may not have been used or changed; the record says who decided
	// what, so none of them is unexplained.
	Unfinished []Activation
	// Unannounced counts results naming a decision the log does not hold
	// before them: a result without its decision, which firma never
	// writes.
	Unannounced int
	// TSASummaries counts the built-in TSA's interval summaries (key.used
	// records closing an interval) and TSATokens the tokens they say were
	// issued. TSAChecked is how many were recomputed from the TSA's
	// issuance log and agreed (VerifyOptions.Issuance); every one, or
	// verification fails.
	TSASummaries int
	TSATokens    int64
	TSAChecked   int
}

// Activation is a decision about a key, as verification reports it: a
// key.activated record (a use), or a key.generate_requested or
// key.destroy_requested record (a change).
type Activation struct {
	ID    string // DetailActivation, or "key-change:" and DetailKeyChange
	Event Event
	Index int64 // position in the log
	Time  time.Time
	KeyID string
	// TSA marks an audit interval of the built-in TSA (purpose tsa);
	// IssuanceRows is, for an unfinished one checked against the issuance
	// log, how many tokens it issued before it was cut short, -1 when not
	// checked.
	TSA          bool
	IssuanceRows int
}

// activations follows decisions to their results while records are
// checked, in log order.
type activations struct {
	open map[string]*Activation // decided, no result yet
	done map[string]bool        // decided and with a result
}

func (a *activations) see(index int64, r *Record, rep *Report) {
	switch r.Event {
	case KeyGenerateRequested, KeyDestroyRequested, KeyGenerated, KeyDestroyed:
		a.seeKeyChange(index, r, rep)
		return
	}
	id := r.Details[DetailActivation]
	if id == "" {
		return // records from before activation records existed
	}
	switch r.Event {
	case KeyActivated:
		if a.open == nil {
			a.open, a.done = map[string]*Activation{}, map[string]bool{}
		}
		rep.Activations++
		a.open[id] = &Activation{ID: id, Index: index, Time: r.Time, KeyID: r.KeyID, Event: r.Event,
			TSA: r.Details["signing_purpose"] == "tsa", IssuanceRows: -1}
	case KeyUsed:
		if _, ok := a.open[id]; ok {
			delete(a.open, id)
			a.done[id] = true
		} else if !a.done[id] {
			rep.Unannounced++
		}
	}
}

// seeKeyChange follows a key change's intent (key.generate_requested,
// key.destroy_requested) to its result, as see does for key use: the
// same report, since a crash between the two leaves the same question.
func (a *activations) seeKeyChange(index int64, r *Record, rep *Report) {
	id := r.Details[DetailKeyChange]
	if id == "" {
		return // a change from before intents were recorded
	}
	id = "key-change:" + id
	if a.open == nil {
		a.open, a.done = map[string]*Activation{}, map[string]bool{}
	}
	switch r.Event {
	case KeyGenerateRequested, KeyDestroyRequested:
		rep.KeyChanges++
		a.open[id] = &Activation{ID: id, Index: index, Time: r.Time, KeyID: r.KeyID, Event: r.Event}
	default:
		if _, ok := a.open[id]; ok {
			delete(a.open, id)
			a.done[id] = true
		} else if !a.done[id] {
			rep.Unannounced++
		}
	}
}

func (a *activations) unfinished() []Activation {
	out := make([]Activation, 0, len(a.open))
	for _, x := range a.open {
		out = append(out, *x)
	}
	slices.SortFunc(out, func(x, y Activation) int { return cmp.Compare(x.Index, y.Index) })
	return out
}

type cpEntry struct {
	*Checkpoint
	trusted bool
}

type verifier struct {
	keys    note.Verifiers
	checkTS TimestampChecker
	origin  string
	cps     []*cpEntry // by size, one per size
	next    int        // first checkpoint not yet reached
	good    int64      // size of the last checkpoint matched
	tree    frontier
	acts    activations
	rep     Report

	ctx      context.Context
	issuance IssuanceLog // nil: summaries are counted, not checked
}

// addCheckpoint verifies a signed checkpoint and adds it.
func (v *verifier) addCheckpoint(signed []byte, ts []byte, trusted bool, where string) error {
	c, err := OpenCheckpoint(signed, v.keys)
	if err != nil {
		return &TamperError{Index: -1, Problem: fmt.Sprintf("%s: %v", where, err)}
	}
	if v.origin == "" {
		v.origin = c.Origin
	} else if c.Origin != v.origin {
		return &TamperError{Index: -1, Problem: fmt.Sprintf("%s is for log %q, not %q", where, c.Origin, v.origin)}
	}
	c.Timestamp = ts
	for _, o := range v.cps {
		if o.Size == c.Size {
			if o.Root != c.Root {
				return &TamperError{Index: -1, Problem: fmt.Sprintf("%s and another checkpoint of size %d have different root hashes: the log forked", where, c.Size)}
			}
			o.trusted = o.trusted || trusted
			if o.Timestamp == nil {
				o.Timestamp = ts
			}
			return nil
		}
	}
	v.cps = append(v.cps, &cpEntry{Checkpoint: c, trusted: trusted})
	slices.SortFunc(v.cps, func(a, b *cpEntry) int { return cmp.Compare(a.Size, b.Size) })
	return nil
}

func (v *verifier) maxSize() int64 {
	if len(v.cps) == 0 {
		return 0
	}
	return v.cps[len(v.cps)-1].Size
}

func eventOf(data []byte) Event {
	var r struct {
		Event Event `json:"event"`
	}
	if json.Unmarshal(data, &r) != nil {
		return ""
	}
	return r.Event
}

// record checks the record at the next position. cols, if not nil, are
// the store's query columns for it.
func (v *verifier) record(index int64, hint *tlog.Hash, data []byte, cols *store.AuditRecord) error {
	p := v.tree.n
	if v.next == 0 && p == 0 {
		if err := v.reach(); err != nil {
			return err
		}
	}
	switch {
	case index > p:
		return &TamperError{Index: p, Problem: fmt.Sprintf("missing: deleted from the log (the records go on with %d, %s)", index, eventOf(data))}
	case index < p:
		return &TamperError{Index: p, Event: eventOf(data), Problem: fmt.Sprintf("out of place: record %d appears again at position %d (duplicated or reordered)", index, p)}
	}
	if p >= v.maxSize() {
		return &TamperError{Index: p, Event: eventOf(data), Problem: "not covered by any signed checkpoint: added outside the log"}
	}
	rec, err := ParseRecord(data)
	if err != nil {
		return &TamperError{Index: p, Event: eventOf(data), Problem: "not a valid record: " + err.Error()}
	}
	if rec.Seq != p {
		return &TamperError{Index: p, Event: rec.Event, Problem: fmt.Sprintf("carries sequence number %d: moved or reordered", rec.Seq)}
	}
	leaf := tlog.RecordHash(data)
	if hint == nil {
		return &TamperError{Index: p, Event: rec.Event, Problem: "the log holds no leaf hash for it: inserted outside the log"}
	}
	if *hint != leaf {
		return &TamperError{Index: p, Event: rec.Event, Problem: "changed: it no longer hashes to the leaf hash the log stored when it was appended"}
	}
	if cols != nil {
		if f := columnMismatch(rec, cols); f != "" {
			return &TamperError{Index: p, Event: rec.Event, Problem: fmt.Sprintf("changed: the store's %s column no longer matches the record", f)}
		}
	}
	v.tree.push(leaf)
	v.rep.Records++
	v.acts.see(p, rec, &v.rep)
	if err := v.checkSummary(p, rec); err != nil {
		return err
	}
	return v.reach()
}

// reach checks every checkpoint of the current tree size.
func (v *verifier) reach() error {
	for v.next < len(v.cps) && v.cps[v.next].Size == v.tree.n {
		c := v.cps[v.next]
		if root := v.tree.root(); root != c.Root {
			// Every record matched its stored leaf hash, so both were
			// rewritten together: the signed root still catches it, but
			// only to within the records since the last good checkpoint.
			return &TamperError{Index: v.good, Problem: fmt.Sprintf(
				"records %d to %d do not hash to the root of the signed checkpoint of size %d: one of them was changed along with its stored hash",
				v.good, c.Size-1, c.Size)}
		}
		v.good = c.Size
		v.rep.Size, v.rep.Root = c.Size, c.Root
		v.rep.Checkpoints++
		if c.trusted {
			v.rep.Trusted++
		}
		if c.Timestamp != nil {
			if v.checkTS != nil {
				d := sha256.Sum256(c.Note)
				at, err := v.checkTS(c.Timestamp, crypto.SHA256, d[:])
				if err != nil {
					return &TamperError{Index: -1, Problem: fmt.Sprintf("checkpoint of size %d: RFC 3161 timestamp: %v", c.Size, err)}
				}
				if v.rep.LastTimestamp.Before(at) {
					v.rep.LastTimestamp = at
				}
			}
			v.rep.Timestamped++
		}
		v.next++
	}
	return nil
}

func (v *verifier) finish() (*Report, error) {
	if v.tree.n == 0 {
		if err := v.reach(); err != nil {
			return nil, err
		}
	}
	if v.next < len(v.cps) {
		c := v.cps[v.next]
		kind := "signed"
		if c.trusted {
			kind = "trusted"
		}
		return nil, &TamperError{Index: v.tree.n, Problem: fmt.Sprintf(
			"missing: the log is truncated: it ends after %d records but a %s checkpoint covers %d", v.tree.n, kind, c.Size)}
	}
	v.rep.Origin = v.origin
	if u := v.acts.unfinished(); len(u) > 0 {
		v.rep.Unfinished = u
	}
	for i, a := range v.rep.Unfinished {
		if !a.TSA || v.issuance == nil {
			continue
		}
		// A TSA interval a crash cut short: its tokens are in the issuance
		// log, with no summary to check them against.
		rows, err := v.issuance.TSAIssuances(v.ctx, a.ID)
		if err != nil {
			return nil, fmt.Errorf("verify: TSA issuance log: %w", err)
		}
		v.rep.Unfinished[i].IssuanceRows = len(rows)
	}
	return &v.rep, nil
}

func columnMismatch(r *Record, c *store.AuditRecord) string {
	switch {
	case !c.Time.Equal(r.Time):
		return "time"
	case c.Event != string(r.Event):
		return "event"
	case c.Outcome != string(r.Outcome):
		return "outcome"
	case c.ActorRole != r.Actor.Role:
		return "actor_role"
	case c.ActorID != r.Actor.ID:
		return "actor_id"
	case c.Citizen != r.Citizen:
		return "citizen"
	case c.Portal != r.Portal:
		return "portal"
	case c.KeyID != r.KeyID:
		return "key_id"
	case c.RequestID != r.RequestID:
		return "request_id"
	case c.Documents != len(r.Documents):
		return "documents"
	}
	return ""
}

// VerifyExport checks an export: every checkpoint's signature against
// keys, every trusted checkpoint (signed notes kept elsewhere, e.g. by an
// auditor from earlier exports), and every record against the tree they
// sign. It fails with a *TamperError (errors.Is ErrTampered) naming the
// first changed, deleted, reordered or inserted record, or the first
// missing one if the log was truncated below a checkpoint.
func VerifyExport(r io.Reader, keys note.Verifiers, trusted ...[]byte) (*Report, error) {
	return VerifyExportWith(r, VerifyOptions{Keys: keys, Trusted: trusted})
}

// VerifyOptions say what to verify an export against.
type VerifyOptions struct {
	// Keys verify checkpoint signatures (NewNoteVerifiers).
	Keys note.Verifiers
	// Trusted are signed checkpoints kept outside the service.
	Trusted [][]byte
	// CheckTimestamp, if set, checks each checkpoint's RFC 3161 token
	// (signature, chain to the TSA roots, that it covers SHA-256 of the
	// signed checkpoint); tsa.VerifyToken does that.
	CheckTimestamp TimestampChecker
	// Issuance, if set, is the built-in TSA's issuance log: every interval
	// summary is recomputed from its rows (count, serial range, root), and
	// a difference fails verification as tampering.
	Issuance IssuanceLog
}

// TimestampChecker verifies a DER RFC 3161 TimeStampToken over digest
// (made with h) and returns its time.
type TimestampChecker func(token []byte, h crypto.Hash, digest []byte) (time.Time, error)

// VerifyExportWith is VerifyExport with timestamp checks.
func VerifyExportWith(r io.Reader, o VerifyOptions) (*Report, error) {
	return VerifyExportContext(context.Background(), r, o)
}

// VerifyExportContext is VerifyExportWith with a context for the issuance
// log's reads.
func VerifyExportContext(ctx context.Context, r io.Reader, o VerifyOptions) (*Report, error) {
	v := &verifier{keys: o.Keys, checkTS: o.CheckTimestamp, ctx: ctx, issuance: o.Issuance}
	trusted := o.Trusted
	for i, t := range trusted {
		if err := v.addCheckpoint(t, nil, true, fmt.Sprintf("trusted checkpoint %d", i+1)); err != nil {
			return nil, err
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	line, records, header := 0, false, false
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l exportLine
		if !header && !bytes.HasPrefix(b, []byte(`{"type":"header"`)) {
			return nil, fmt.Errorf("%w: line %d: want a %s header first", ErrExport, line, ExportFormat)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrExport, line, err)
		}
		switch l.Type {
		case "header":
			if header || l.Format != ExportFormat {
				return nil, fmt.Errorf("%w: line %d: want one %s header, first", ErrExport, line, ExportFormat)
			}
			header = true
			v.rep.Unsigned = l.LogSize
		case "checkpoint":
			if records {
				return nil, fmt.Errorf("%w: line %d: checkpoint after records", ErrExport, line)
			}
			if err := v.addCheckpoint([]byte(l.Note), l.Timestamp, false, fmt.Sprintf("checkpoint on line %d", line)); err != nil {
				return nil, err
			}
		case "record":
			records = true
			if l.Index == nil {
				return nil, fmt.Errorf("%w: line %d: record without index", ErrExport, line)
			}
			data := []byte(l.Record)
			if l.Raw != nil {
				data = []byte(*l.Raw)
			}
			if err := v.record(*l.Index, l.Hash, data, nil); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: line %d: unknown line type %q", ErrExport, line, l.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrExport, line+1, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%w: empty", ErrExport)
	}
	rep, err := v.finish()
	if err != nil {
		return nil, err
	}
	rep.Unsigned = max(rep.Unsigned-rep.Records, 0)
	return rep, nil
}

// VerifyStore checks the log in st directly: as VerifyExport does an
// export of it, and also that the store's query columns agree with each
// record, so a query cannot be steered by editing them.
func VerifyStore(ctx context.Context, st store.AuditStore, keys note.Verifiers, trusted ...[]byte) (*Report, error) {
	return VerifyStoreWith(ctx, st, VerifyOptions{Keys: keys, Trusted: trusted})
}

// VerifyStoreWith is VerifyStore with timestamp checks.
func VerifyStoreWith(ctx context.Context, st store.AuditStore, o VerifyOptions) (*Report, error) {
	v := &verifier{keys: o.Keys, checkTS: o.CheckTimestamp, ctx: ctx, issuance: o.Issuance}
	for i, t := range o.Trusted {
		if err := v.addCheckpoint(t, nil, true, fmt.Sprintf("trusted checkpoint %d", i+1)); err != nil {
			return nil, err
		}
	}
	for after := int64(-1); ; {
		page, err := st.AuditCheckpoints(ctx, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			if err := v.addCheckpoint(c.Note, c.Timestamp, false, fmt.Sprintf("stored checkpoint of size %d", c.Size)); err != nil {
				return nil, err
			}
		}
		after = page[len(page)-1].Size
	}
	logSize, err := st.AuditSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	size := v.maxSize()
	for from := int64(0); from < size; from += exportChunk {
		recs, err := st.AuditRecords(ctx, from, min(from+exportChunk, size))
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		hints, err := leafHashes(ctx, st, recs)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		for i, r := range recs {
			if err := v.record(r.Index, hints[i], r.Data, r); err != nil {
				return nil, err
			}
		}
	}
	rep, err := v.finish()
	if err != nil {
		return nil, err
	}
	rep.Unsigned = max(logSize-rep.Records, 0)
	return rep, nil
}

// frontier is the right edge of an RFC 6962 tree being rebuilt leaf by
// leaf: the roots of its complete subtrees, largest first. It needs
// O(log n) memory where tlog's stored hashes need O(n), which matters when
// verifying a large export on an auditor's laptop.
type frontier struct {
	n      int64
	hashes []tlog.Hash
	levels []int
}

func (f *frontier) push(leaf tlog.Hash) {
	f.hashes = append(f.hashes, leaf)
	f.levels = append(f.levels, 0)
	for k := len(f.hashes); k >= 2 && f.levels[k-1] == f.levels[k-2]; k = len(f.hashes) {
		f.hashes[k-2] = tlog.NodeHash(f.hashes[k-2], f.hashes[k-1])
		f.levels[k-2]++
		f.hashes, f.levels = f.hashes[:k-1], f.levels[:k-1]
	}
	f.n++
}

// root is the tree hash: RFC 6962 splits at the largest power of two, so
// the subtrees fold from the right.
func (f *frontier) root() tlog.Hash {
	if f.n == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.hashes[i], h)
	}
	return h
}
