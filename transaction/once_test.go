package transaction_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// crashStore is the real store whose write marking recorded signatures
// signed (from "recording") fails while crashed is set: the process died
// after the key.used records, before that commit.
type crashStore struct {
	store.Store // all of it: the service finds its attempt counters there
	crashed     *atomic.Bool
}

var errCrashed = errors.New("test: the process died here")

func (c crashStore) UpdateDocuments(ctx context.Context, docs []*store.Document, from string) ([]int, error) {
	if c.crashed.Load() && from == string(transaction.DocRecording) {
		return nil, errCrashed
	}
	return c.Store.UpdateDocuments(ctx, docs, from)
}

// crashAuditor is the real audit log that writes no successful key.used
// while crashed is set: the process died after storing the signatures,
// before their records.
type crashAuditor struct {
	*audit.Log
	crashed *atomic.Bool
}

func (c crashAuditor) Append(ctx context.Context, r *audit.Record) error {
	if c.crashed.Load() && r.Event == audit.KeyUsed && r.Outcome == audit.Success {
		return errCrashed
	}
	return c.Log.Append(ctx, r)
}

// TestCrashAroundKeyUsedSignsOnce interrupts a batch (raw, CAdES and PAdES
// documents) after its signatures were stored, hidden, and either after
// their key.used records or before them, then restarts and resumes: every
// document ends signed with exactly one successful key.used record, and
// no document is signed again (the resumed activation, if any, writes
// the missing records marked signed_before_interruption). Cost: two
// environments, under a second each.
func TestCrashAroundKeyUsedSignsOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		beforeRecord bool // the crash came before the key.used records
	}{
		{name: "after key.used, before marked signed"},
		{name: "after stored hidden, before key.used", beforeRecord: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: SoftHSM2 sees only the tokens that exist when
			// the process loads it.
			var crashed atomic.Bool
			var e *env
			e = newEnv(t, func(o *transaction.Options) {
				o.Store = crashStore{Store: o.Store.(store.Store), crashed: &crashed}
				if tc.beforeRecord && e != nil { // e is nil while newEnv builds it: see the restart below
					s, err := signing.New(signing.Options{Keys: e.ks, Core: signer.New(e.ks, signer.Config{VerifyECDSA: true}),
						CA: e.ca, Citizens: e.reg, Auditor: crashAuditor{Log: e.audit, crashed: &crashed}})
					if err != nil {
						t.Fatal(err)
					}
					o.Signing = s
				}
			})
			e.restart() // now with the crashing auditor
			p := e.portal("Portal", nil)
			citizen := e.advanced(12345678)
			docs, _ := threeDocs(t)
			c := e.create(p, citizen, docs...)
			sess, code := e.login(c.ID, citizen)
			crashed.Store(true)
			if _, err := e.svc.Approve(e.ctx, c.ID, sess, code); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.Wait(e.ctx, c.ID); !errors.Is(err, errCrashed) {
				t.Fatalf("signing with the crash: %v, want the crash", err)
			}
			// Nothing is handed out while the records are unconfirmed.
			r, err := e.svc.Results(e.ctx, p.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			hidden := 0
			for _, d := range r.Documents {
				if d.Status != transaction.DocPending || d.Signature != nil {
					t.Errorf("document %d before the resume: %s with %d signature bytes, want pending and none", d.Index, d.Status, len(d.Signature))
				}
			}
			sd, err := e.db.Documents(e.ctx, c.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range sd {
				if d.Status == string(transaction.DocRecording) && len(d.Result) > 0 {
					hidden++
				}
			}
			if hidden == 0 {
				t.Fatal("no signature stored hidden before the crash")
			}
			usedBefore := keyUses(t, e, c.ID)

			crashed.Store(false)
			e.restart()
			if err := e.svc.Resume(e.ctx); err != nil {
				t.Fatal(err)
			}
			r, err = e.svc.Results(e.ctx, p.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Transaction.State != transaction.StateDone || r.Transaction.Summary != transaction.SummaryAllSigned {
				t.Fatalf("after resume: %s %s, want done, all signed", r.Transaction.State, r.Transaction.Summary)
			}
			for _, d := range r.Documents {
				if d.Status != transaction.DocSigned || len(d.Signature) == 0 {
					t.Errorf("document %d after the resume: %s with %d signature bytes", d.Index, d.Status, len(d.Signature))
				}
			}
			// The signatures kept are those made before the crash.
			for _, d := range sd {
				if d.Status == string(transaction.DocRecording) && string(r.Documents[d.Index].Signature) != string(d.Result) {
					t.Errorf("document %d was signed again on resume", d.Index)
				}
			}
			used := keyUses(t, e, c.ID)
			for k, n := range used {
				if n.count != 1 {
					t.Errorf("document %s: %d key.used records, want 1", k, n.count)
				}
			}
			if len(used) != len(docs) {
				t.Errorf("%d documents with key.used records, want %d", len(used), len(docs))
			}
			late := 0
			for _, n := range used {
				if n.late {
					late++
				}
			}
			// The crash stops the batch at its first store (the raw
			// document; CAdES and PAdES come one at a time after it): the
			// rest are signed on resume.
			if tc.beforeRecord {
				// The resume wrote the missing records, no new signature.
				if late != hidden || len(usedBefore) != 0 {
					t.Errorf("%d documents recorded %s, %d before the resume, want %d and 0", late, transaction.DetailSignedBefore, len(usedBefore), hidden)
				}
			} else if late != 0 || len(usedBefore) != hidden {
				// The records were there: the resume only confirmed them.
				t.Errorf("%d documents recorded %s, %d before the resume, want 0 and %d", late, transaction.DetailSignedBefore, len(usedBefore), hidden)
			}
		})
	}
}

type keyUse struct {
	count int
	late  bool
}

// keyUses counts the successful key.used records naming each document of
// transaction id, by digest.
func keyUses(t *testing.T, e *env, id string) map[string]keyUse {
	t.Helper()
	recs, err := e.db.QueryAudit(e.ctx, store.AuditFilter{Events: []string{string(audit.KeyUsed)}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]keyUse{}
	for _, sr := range recs {
		r, err := audit.ParseRecord(sr.Data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != audit.Success || r.Details["transaction"] != id {
			continue
		}
		for _, d := range r.Documents {
			k := fmt.Sprintf("%s:%s", d.Hash, d.Digest)
			u := out[k]
			u.count++
			u.late = u.late || r.Details[transaction.DetailSignedBefore] == "true"
			out[k] = u
		}
	}
	return out
}
