package audit_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store"
)

// TestCheckSigned builds, for each case, a real log on a real store with
// a transaction of two documents, as transaction.Service and the signing
// service would write them around crashes at various points, and checks
// what CheckSigned says. Cost: one SoftHSM2 token per case, about 0.3 s
// each (one after another: tokens made in parallel in one process
// collide).
func TestCheckSigned(t *testing.T) {
	const tx = "tx-1"
	d1, d2 := sha256.Sum256([]byte("uno")), sha256.Sum256([]byte("dos"))
	doc1, doc2 := audit.Digest(crypto.SHA256, d1[:]), audit.Digest(crypto.SHA256, d2[:])
	both := []audit.Document{doc1, doc2}
	activated := func(act string, resumed bool, docs ...audit.Document) *audit.Record {
		r := &audit.Record{Event: audit.KeyActivated, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleCitizen, ID: "cit-1"},
			Citizen: "cit-1", KeyID: "key-1", RequestID: tx, Documents: docs,
			Details: map[string]string{audit.DetailActivation: act, "transaction": tx, "signing_purpose": "transaction"}}
		if resumed {
			r.Details[audit.DetailResumed] = "true"
		}
		return r
	}
	used := func(act string, outcome audit.Outcome, docs ...audit.Document) *audit.Record {
		r := activated(act, false, docs...)
		r.Event, r.Outcome = audit.KeyUsed, outcome
		if outcome != audit.Success {
			r.Reason = "documents not signed"
		}
		return r
	}
	tests := []struct {
		name                         string
		signed                       []bool // of the two documents
		recs                         []*audit.Record
		problems                     []string // substrings, one per problem expected; none: passes
		resumed, resigned, discarded int
	}{
		{name: "signed once", signed: []bool{true, true},
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, both...)}},
		{name: "one signed, one failed", signed: []bool{true, false},
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, doc1), used("a1", audit.Failure, doc2)}},
		{name: "crash before key.used, resumed", signed: []bool{true, true}, resumed: 1,
			recs: []*audit.Record{activated("a1", false, both...), activated("a2", true, both...), used("a2", audit.Success, both...)}},
		{name: "signed again on resume after key.used", signed: []bool{true, true}, resigned: 2,
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, both...),
				activated("a2", true, both...), used("a2", audit.Success, both...)},
			problems: []string{"1 stored signatures, 2 key.used records", "1 stored signatures, 2 key.used records"}},
		{name: "stored hidden, crash before key.used, recorded on resume", signed: []bool{true, true}, resumed: 1,
			recs: []*audit.Record{activated("a1", false, both...), activated("a2", true, both...), used("a2", audit.Success, both...)}},
		{name: "signed again on resume, never stored", signed: []bool{false, false}, resigned: 2, discarded: 4,
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, both...),
				activated("a2", true, both...), used("a2", audit.Success, both...)},
			problems: []string{"not stored as signed, 2 key.used records", "not stored as signed, 2 key.used records"}},
		{name: "first document stored, crash before the second", signed: []bool{true, true}, resumed: 0,
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, doc1),
				activated("a2", true, doc2), used("a2", audit.Success, doc2)}},
		{name: "key.used duplicated", signed: []bool{true, true},
			recs:     []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, both...), used("a1", audit.Success, doc2)},
			problems: []string{"1 stored signatures, 2 key.used records"}},
		{name: "re-signed without saying it resumed", signed: []bool{true, true},
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, both...),
				activated("a2", false, both...), used("a2", audit.Success, both...)},
			problems: []string{"2 key.used records", "2 key.used records"}},
		{name: "signature stored without key.used", signed: []bool{true, true},
			recs:     []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, doc1), used("a1", audit.Failure, doc2)},
			problems: []string{"1 stored signatures, 0 key.used records"}},
		{name: "activation cut short, never resumed", signed: []bool{false, false},
			recs:     []*audit.Record{activated("a1", false, both...)},
			problems: []string{"no key.used and no later activation resumed it"}},
		{name: "key.used before its activation", signed: []bool{true, true},
			recs:     []*audit.Record{used("a1", audit.Success, both...), activated("a1", false, both...), used("a1", audit.Success, both...)},
			problems: []string{"name no key.activated before them"}},
		{name: "signed, released, never stored", signed: []bool{false, false}, discarded: 2,
			recs: []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, both...)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, audit.Options{})
			ctx := context.Background()
			storeTransaction(t, e.db, tx, [][]byte{d1[:], d2[:]}, tc.signed)
			for _, r := range tc.recs {
				if err := e.log.Append(ctx, r); err != nil {
					t.Fatalf("append %s: %v", r.Event, err)
				}
			}
			checkpoint(t, e.log)
			rep, err := audit.CheckSigned(ctx, e.db, audit.VerifyOptions{Keys: e.keys})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != len(tc.problems) {
				t.Fatalf("problems %q, want %d like %q", rep.Problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(rep.Problems[i], want) && !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
					t.Errorf("problem %d %q, want one with %q", i, rep.Problems[i], want)
				}
			}
			if (rep.Err() == nil) != (len(tc.problems) == 0) || (rep.Err() != nil && !errors.Is(rep.Err(), audit.ErrUnexplained)) {
				t.Errorf("Err() = %v with problems %q", rep.Err(), rep.Problems)
			}
			nSigned := 0
			for _, s := range tc.signed {
				if s {
					nSigned++
				}
			}
			if rep.Signed != nSigned || rep.Resumed != tc.resumed || rep.Resigned != tc.resigned || rep.Discarded != tc.discarded {
				t.Errorf("signed %d resumed %d resigned %d discarded %d, want %d %d %d %d",
					rep.Signed, rep.Resumed, rep.Resigned, rep.Discarded, nSigned, tc.resumed, tc.resigned, tc.discarded)
			}
		})
	}

	// A log changed under its checkpoint: the check rests on it, so it
	// refuses to answer at all.
	t.Run("tampered", func(t *testing.T) {
		e := newEnv(t, audit.Options{})
		ctx := context.Background()
		storeTransaction(t, e.db, tx, [][]byte{d1[:], d2[:]}, []bool{true, true})
		for _, r := range []*audit.Record{activated("a1", false, both...), used("a1", audit.Success, doc1), used("a1", audit.Success, doc2)} {
			if err := e.log.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		checkpoint(t, e.log)
		// Hide the second key.used's document behind the first's: what an
		// attacker would do to make a signature look recorded twice, or
		// another disappear.
		tamper(t, e, fmt.Sprintf(`UPDATE audit_records SET data = replace(data, '%x', '%x') WHERE idx = 2`, d2[:], d1[:]))
		_, err := audit.CheckSigned(ctx, e.db, audit.VerifyOptions{Keys: e.keys})
		if !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("CheckSigned on a changed log: %v, want ErrTampered", err)
		}
	})
}

// storeTransaction stores a done transaction of a portal with one
// document per digest, signed or failed as signed says.
func storeTransaction(t *testing.T, db store.Store, id string, digests [][]byte, signed []bool) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.CreatePortal(ctx, &store.Portal{ID: "portal-1", Name: "Portal", RedirectURLs: []string{"https://p.example/ok"},
		MaxDocuments: 10, MaxDocBytes: 1 << 20, RatePerMin: 100, Status: "active", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	tx := &store.Transaction{ID: id, PortalID: "portal-1", CitizenID: "cit-1", State: "pending", OKURL: "https://p.example/ok",
		ErrorURL: "https://p.example/ok", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	var docs []*store.Document
	for i, d := range digests {
		docs = append(docs, &store.Document{TransactionID: id, Index: i, Name: fmt.Sprintf("doc-%d", i), Format: "raw", Hash: "sha256", Digest: d, Status: "pending"})
	}
	if err := db.CreateTransaction(ctx, tx, docs, 0); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		d.Status, d.Result = "failed", nil
		if signed[i] {
			d.Status, d.Result, d.SignedAt = "signed", []byte("signature"), now
		}
	}
	if _, err := db.UpdateDocuments(ctx, docs, "pending"); err != nil {
		t.Fatal(err)
	}
}
