package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/store"
)

// The built-in TSA signs for anyone, so a record per token would let
// anonymous callers grow this log at will. Its key use is recorded per
// interval instead: a key.activated record opens the interval before its
// first token is signed, and a key.used summary with the same
// DetailActivation closes it, naming how many tokens the interval issued,
// their serial range and the Merkle root over their rows in the TSA's
// issuance log (store.TSAIssuance). Verification given the issuance log
// recomputes each summary from its rows.

// Detail keys of an interval summary.
const (
	DetailTSACount = "tsa_count"        // tokens issued in the interval, decimal
	DetailTSAFirst = "tsa_first_serial" // lowest serial, hex ("0x1f"); absent when the count is 0
	DetailTSALast  = "tsa_last_serial"  // highest serial, hex; absent when the count is 0
	DetailTSARoot  = "tsa_root"         // RFC 6962 tree hash over the rows in serial order, hex
	// DetailTSAWithheld counts tokens signed in the interval but not
	// handed out, because their issuance row could not be stored: the key
	// was used for them, and they are nowhere else.
	DetailTSAWithheld = "tsa_withheld"
)

// IssuanceSummary is what an interval summary says of the interval's
// tokens.
type IssuanceSummary struct {
	Count       int64
	First, Last int64 // serial range; 0 when Count is 0
	Root        tlog.Hash
	Withheld    int64
}

// issuanceLeaf is the canonical form of one row hashed into the root:
// every column, so that changing any of them changes the root. Field
// order is fixed by the struct.
type issuanceLeaf struct {
	Interval    string    `json:"interval"`
	Serial      int64     `json:"serial"`
	KeyID       string    `json:"key_id"`
	IssuedAt    time.Time `json:"issued_at"`
	TokenHash   string    `json:"token_hash"`
	ImprintHash string    `json:"imprint_hash"`
	Policy      string    `json:"policy"`
	Client      string    `json:"client"`
}

// IssuanceLeaf is the leaf hash of one issuance row.
func IssuanceLeaf(r *store.TSAIssuance) tlog.Hash {
	b, err := json.Marshal(issuanceLeaf{Interval: r.Interval, Serial: r.Serial, KeyID: r.KeyID, IssuedAt: r.IssuedAt.UTC(),
		TokenHash: hex.EncodeToString(r.TokenHash), ImprintHash: r.ImprintHash, Policy: r.Policy, Client: r.Client})
	if err != nil {
		panic("audit: issuance leaf: " + err.Error()) // strings, an int and a time: cannot fail
	}
	return tlog.RecordHash(b)
}

// Issuance builds an interval's summary from its rows' leaf hashes, added
// in serial order. The zero value is an empty interval.
type Issuance struct {
	tree        frontier
	first, last int64
}

// Add adds the next row, by serial.
func (s *Issuance) Add(serial int64, leaf tlog.Hash) {
	if s.tree.n == 0 {
		s.first = serial
	}
	s.last = serial
	s.tree.push(leaf)
}

// Summary is the summary of the rows added, with withheld tokens counted.
func (s *Issuance) Summary(withheld int64) IssuanceSummary {
	return IssuanceSummary{Count: s.tree.n, First: s.first, Last: s.last, Root: s.tree.root(), Withheld: withheld}
}

// SummariseIssuance summarises rows sorted by serial, as
// store.TSAIssuanceStore.TSAIssuances returns them.
func SummariseIssuance(rows []*store.TSAIssuance) IssuanceSummary {
	var s Issuance
	for _, r := range rows {
		s.Add(r.Serial, IssuanceLeaf(r))
	}
	return s.Summary(0)
}

// Details are the summary's record details.
func (s IssuanceSummary) Details() map[string]string {
	d := map[string]string{
		DetailTSACount: strconv.FormatInt(s.Count, 10),
		DetailTSARoot:  hex.EncodeToString(s.Root[:]),
	}
	if s.Count > 0 {
		// Hex: the log refuses long digit strings as possible phone numbers.
		d[DetailTSAFirst] = fmt.Sprintf("%#x", s.First)
		d[DetailTSALast] = fmt.Sprintf("%#x", s.Last)
	}
	if s.Withheld > 0 {
		d[DetailTSAWithheld] = strconv.FormatInt(s.Withheld, 10)
	}
	return d
}

// ParseIssuanceSummary reads a summary from a record's details; ok is
// false when the record is not one.
func ParseIssuanceSummary(d map[string]string) (s IssuanceSummary, ok bool, err error) {
	root, ok := d[DetailTSARoot]
	if !ok {
		return s, false, nil
	}
	if b, err := hex.DecodeString(root); err != nil || len(b) != len(s.Root) {
		return s, true, fmt.Errorf("%s is not a hex hash", DetailTSARoot)
	} else {
		copy(s.Root[:], b)
	}
	if s.Count, err = strconv.ParseInt(d[DetailTSACount], 10, 64); err != nil || s.Count < 0 {
		return s, true, fmt.Errorf("%s is not a count", DetailTSACount)
	}
	if w, has := d[DetailTSAWithheld]; has {
		if s.Withheld, err = strconv.ParseInt(w, 10, 64); err != nil || s.Withheld < 0 {
			return s, true, fmt.Errorf("%s is not a count", DetailTSAWithheld)
		}
	}
	if s.Count == 0 {
		return s, true, nil
	}
	for _, f := range []struct {
		key string
		v   *int64
	}{{DetailTSAFirst, &s.First}, {DetailTSALast, &s.Last}} {
		if *f.v, err = strconv.ParseInt(d[f.key], 0, 64); err != nil {
			return s, true, fmt.Errorf("%s is not a serial", f.key)
		}
	}
	return s, true, nil
}

// mismatch says how got, recomputed from the issuance log, differs from
// the summary want; "" when they agree. Withheld tokens have no rows.
func (want IssuanceSummary) mismatch(got IssuanceSummary) string {
	switch {
	case got.Count != want.Count:
		return fmt.Sprintf("the issuance log holds %d tokens for it, the summary says %d: rows were deleted or added", got.Count, want.Count)
	case got.Count > 0 && (got.First != want.First || got.Last != want.Last):
		return fmt.Sprintf("the issuance log's serials run %#x to %#x, the summary says %#x to %#x: rows were changed",
			got.First, got.Last, want.First, want.Last)
	case got.Root != want.Root:
		return "the issuance log's rows no longer hash to the summary's root: a row was changed"
	}
	return ""
}

// IssuanceLog is the TSA issuance log verification checks summaries
// against; store.TSAIssuanceStore is one.
type IssuanceLog interface {
	TSAIssuances(ctx context.Context, interval string) ([]*store.TSAIssuance, error)
}

var _ IssuanceLog = store.TSAIssuanceStore(nil)

// checkSummary checks the summary record r at index against the issuance
// log, when there is one to check against.
func (v *verifier) checkSummary(index int64, r *Record) error {
	if r.Event != KeyUsed {
		return nil
	}
	want, ok, err := ParseIssuanceSummary(r.Details)
	if !ok {
		return nil
	}
	if err != nil {
		return &TamperError{Index: index, Event: r.Event, Problem: "TSA interval summary: " + err.Error()}
	}
	v.rep.TSASummaries++
	v.rep.TSATokens += want.Count
	if v.issuance == nil {
		return nil
	}
	interval := r.Details[DetailActivation]
	rows, err := v.issuance.TSAIssuances(v.ctx, interval)
	if err != nil {
		return fmt.Errorf("verify: TSA issuance log: %w", err)
	}
	for _, row := range rows {
		if row.KeyID != r.KeyID {
			return &TamperError{Index: index, Event: r.Event, Problem: fmt.Sprintf(
				"TSA interval %s: issuance row %#x names key %s, the summary key %s: a row was changed", interval, row.Serial, row.KeyID, r.KeyID)}
		}
	}
	if m := want.mismatch(SummariseIssuance(rows)); m != "" {
		return &TamperError{Index: index, Event: r.Event, Problem: fmt.Sprintf("TSA interval %s: %s", interval, m)}
	}
	v.rep.TSAChecked++
	return nil
}
