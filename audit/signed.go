package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/store"
)

// DetailResumed is "true" on a key.activated record (and its key.used) of
// a transaction whose signing was authorised before: the earlier
// activation was cut short (a crash, a stop, a lease that ran out, an HSM
// fault) and this one signs the documents still pending. CheckSigned
// explains an unfinished activation by it.
const DetailResumed = "resumed"

// detailTransaction names the transaction in the signing records of a
// citizen's transaction (transaction.Service puts it there).
const detailTransaction = "transaction"

// ErrUnexplained means CheckSigned found a stored signature without
// exactly one key.used record, or a key use nothing explains.
var ErrUnexplained = errors.New("signed documents and key records do not match")

// SignedStore is what CheckSigned reads: the audit log and the
// transactions with their documents.
type SignedStore interface {
	store.AuditStore
	store.TransactionStore
}

// SignedReport is what CheckSigned found.
type SignedReport struct {
	// Log is the verification of the audit log the check rests on.
	Log *Report
	// Signed counts the stored signed documents checked, each against
	// exactly one key.used record.
	Signed int
	// Resumed counts activations of a transaction cut short (no key.used)
	// whose documents a later activation that says it resumed signed.
	Resumed int
	// Resigned counts key.used records beyond a document's first that a
	// later activation saying it resumed wrote: the document was signed
	// again after an interruption. The transaction package stores
	// signatures before their record and never signs them again on
	// resume, so this is a problem too (each one is also in Problems);
	// it is counted apart to say what went wrong.
	Resigned int
	// Discarded counts key.used records naming a document that is not
	// stored as signed and that no later activation resumed: a signature
	// made and recorded, then withheld or lost.
	Discarded int
	// Interrupted counts activations of service keys (operator, TSA) with
	// no key.used: nothing was released, and nothing resumes them.
	Interrupted int
	// Problems says what does not match, one line each; empty when the
	// check passed.
	Problems []string
}

// Err is nil when the check passed, else an error wrapping
// ErrUnexplained that lists the first problems.
func (r *SignedReport) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	shown := r.Problems
	if len(shown) > 10 {
		shown = shown[:10]
	}
	return fmt.Errorf("%w: %d problems: %s", ErrUnexplained, len(r.Problems), strings.Join(shown, "; "))
}

// signedKey identifies a document of a transaction in both the store and
// the log: a transaction may hold the same digest twice, so it is
// counted, not looked up.
type signedKey struct{ tx, hash, digest string }

type checkedActivation struct {
	id       string
	index    int64
	tx       string // "" for uses outside a transaction
	purpose  string
	resumed  bool
	docs     map[signedKey]bool
	finished bool
}

type checkedUse struct {
	act *checkedActivation
}

// storeHashes maps the store's hash names to the log's.
var storeHashes = map[string]string{"sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512"}

// CheckSigned checks that the log verifies (VerifyStoreWith with o) and
// that it accounts for every signed document in st:
//
//   - every document stored as signed has exactly one successful key.used
//     record naming it (by transaction and digest), a resumed signing
//     included: a second record is a problem (counted in Resigned too
//     when a later activation marked DetailResumed wrote it);
//   - no document not stored as signed has more than one;
//   - every key.activated of a transaction has its key.used, or a later
//     activation of the transaction marked DetailResumed;
//   - every key.used follows its key.activated.
//
// Only records under a signed checkpoint count: take one (or stop firmad,
// which signs one) before checking. It returns an error when the log does
// not verify (errors.Is ErrTampered) or the store fails; a mismatch is in
// the report's Problems (and Err).
func CheckSigned(ctx context.Context, st SignedStore, o VerifyOptions) (*SignedReport, error) {
	logRep, err := VerifyStoreWith(ctx, st, o)
	if err != nil {
		return nil, err
	}
	rep := &SignedReport{Log: logRep}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	if logRep.Unannounced > 0 {
		problem("%d key.used records name no key.activated before them", logRep.Unannounced)
	}

	acts := map[string]*checkedActivation{}
	var order []*checkedActivation
	byTx := map[string][]*checkedActivation{} // resumed activations, in log order
	uses := map[signedKey][]checkedUse{}
	for from := int64(0); from < logRep.Records; from += exportChunk {
		recs, err := st.AuditRecords(ctx, from, min(from+exportChunk, logRep.Records))
		if err != nil {
			return nil, fmt.Errorf("check signed: %w", err)
		}
		for _, sr := range recs {
			r, err := ParseRecord(sr.Data)
			if err != nil {
				return nil, fmt.Errorf("check signed: record %d: %w", sr.Index, err)
			}
			id := r.Details[DetailActivation]
			if id == "" || (r.Event != KeyActivated && r.Event != KeyUsed) {
				continue
			}
			tx := r.Details[detailTransaction]
			switch {
			case r.Event == KeyActivated && r.Outcome == Success:
				a := &checkedActivation{id: id, index: sr.Index, tx: tx, purpose: r.Details["signing_purpose"],
					resumed: r.Details[DetailResumed] == "true", docs: map[signedKey]bool{}}
				for _, d := range r.Documents {
					a.docs[signedKey{tx, d.Hash, d.Digest}] = true
				}
				acts[id] = a
				order = append(order, a)
				if a.resumed && tx != "" {
					byTx[tx] = append(byTx[tx], a)
				}
			case r.Event == KeyUsed:
				a := acts[id]
				if a == nil {
					continue // counted in Unannounced
				}
				a.finished = true
				if r.Outcome != Success || tx == "" {
					continue
				}
				for _, d := range r.Documents {
					k := signedKey{tx, d.Hash, d.Digest}
					uses[k] = append(uses[k], checkedUse{act: a})
				}
			}
		}
	}

	resumedTx := func(a *checkedActivation) bool {
		rs := byTx[a.tx]
		return len(rs) > 0 && rs[len(rs)-1].index > a.index
	}
	for _, a := range order {
		switch {
		case a.finished:
		case a.tx == "":
			rep.Interrupted++
		case resumedTx(a):
			rep.Resumed++
		default:
			problem("activation %s (record %d) of transaction %s has no key.used and no later activation resumed it", a.id, a.index, a.tx)
		}
	}

	signed := map[signedKey]int{}
	for after := ""; ; {
		ts, err := st.Transactions(ctx, store.TransactionFilter{After: after, Limit: 500})
		if err != nil {
			return nil, fmt.Errorf("check signed: %w", err)
		}
		if len(ts) == 0 {
			break
		}
		for _, t := range ts {
			docs, err := st.Documents(ctx, t.ID, false)
			if err != nil {
				return nil, fmt.Errorf("check signed: transaction %s: %w", t.ID, err)
			}
			for _, d := range docs {
				if d.Status != "signed" {
					continue
				}
				h := storeHashes[d.Hash]
				if h == "" {
					h = d.Hash
				}
				signed[signedKey{t.ID, h, fmt.Sprintf("%x", d.Digest)}]++
			}
		}
		after = ts[len(ts)-1].ID
	}
	for k, n := range signed {
		rep.Signed += n
		us := uses[k]
		for i, u := range us {
			if i >= n && u.act.resumed {
				rep.Resigned++
			}
		}
		if len(us) != n {
			problem("transaction %s document %s %s: %d stored signatures, %d key.used records", k.tx, k.hash, k.digest, n, len(us))
		}
	}
	for k, us := range uses {
		if signed[k] > 0 {
			continue
		}
		rep.Discarded += len(us)
		for i, u := range us {
			if i > 0 && u.act.resumed {
				rep.Resigned++
			}
		}
		if len(us) > 1 {
			problem("transaction %s document %s %s: not stored as signed, %d key.used records", k.tx, k.hash, k.digest, len(us))
		}
	}
	return rep, nil
}
