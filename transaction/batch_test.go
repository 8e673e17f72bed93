package transaction_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/transaction"
)

// TestThreeStepBatch is FIRe's createBatch, addDocumentToBatch and
// signBatch, then the citizen's approval.
func TestThreeStepBatch(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", func(s *portal.Spec) { s.Limits.MaxDocuments = 3 })
	other := e.portal("Otro portal", nil)
	citizen := e.advanced(12345678)
	req := transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL, StopOnError: true}

	_, err := e.svc.CreateDraft(e.ctx, p, transaction.CreateRequest{CitizenID: e.basic(22222222), OKURL: okURL, ErrorURL: errURL})
	wantCode(t, err, transaction.CodeWeakRegistration)
	c, err := e.svc.CreateDraft(e.ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != transaction.StateDraft || c.RedirectURL != "" {
		t.Fatalf("draft %+v", c)
	}
	// Nothing for the citizen to see or do yet.
	_, err = e.svc.View(e.ctx, c.ID)
	wantCode(t, err, transaction.CodeNotFound)
	_, err = e.svc.Authenticate(e.ctx, c.ID, citizen, password)
	wantCode(t, err, transaction.CodeWrongState)
	_, err = e.svc.SignBatch(e.ctx, p.ID, c.ID)
	wantCode(t, err, transaction.CodeInvalidRequest)

	docs, contents := threeDocs(t)
	for i, d := range docs {
		n, err := e.svc.AddDocument(e.ctx, p, c.ID, d)
		if err != nil || n != i {
			t.Fatalf("add %d: %d %v", i, n, err)
		}
	}
	_, err = e.svc.AddDocument(e.ctx, p, c.ID, docs[0])
	wantCode(t, err, transaction.CodeTooManyDocuments)
	_, err = e.svc.AddDocument(e.ctx, other, c.ID, docs[0])
	wantCode(t, err, transaction.CodeNotFound)

	signed, err := e.svc.SignBatch(e.ctx, p.ID, c.ID)
	if err != nil || signed.State != transaction.StateCreated || signed.RedirectURL == "" {
		t.Fatalf("sign batch: %v %+v", err, signed)
	}
	again, err := e.svc.SignBatch(e.ctx, p.ID, c.ID)
	if err != nil || again.RedirectURL != signed.RedirectURL {
		t.Fatalf("sign batch twice: %v", err)
	}
	sum := sha256.Sum256([]byte("late"))
	_, err = e.svc.AddDocument(e.ctx, p, c.ID, transaction.DocumentInput{Name: "late", Digest: sum[:]})
	wantCode(t, err, transaction.CodeWrongState)

	sess, code := e.login(c.ID, citizen)
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifyResults(t, e, r, contents)
}

func TestDraftChecksAndExpiry(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c, err := e.svc.CreateDraft(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	if _, err := e.svc.AddDocument(e.ctx, p, c.ID, transaction.DocumentInput{Name: "x", Digest: sum[:]}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AddDocument(e.ctx, p, c.ID, transaction.DocumentInput{Name: "x again", Content: []byte("x")})
	wantCode(t, err, transaction.CodeDuplicateDocument)
	_, err = e.svc.AddDocument(e.ctx, p, c.ID, transaction.DocumentInput{Name: "short", Digest: sum[:16]})
	wantCode(t, err, transaction.CodeBadDigest)
	_, err = e.svc.CreateDraft(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "y", Content: []byte("y")}}})
	wantCode(t, err, transaction.CodeInvalidRequest)

	// An open batch left alone expires like any transaction.
	e.clock.Add(10*time.Minute + time.Second)
	e.svc.Sweep(e.ctx)
	tx, err := e.svc.Get(e.ctx, p.ID, c.ID)
	if err != nil || tx.State != transaction.StateExpired {
		t.Fatalf("after 10 minutes: %v %+v", err, tx)
	}
	_, err = e.svc.SignBatch(e.ctx, p.ID, c.ID)
	wantCode(t, err, transaction.CodeExpired)
}
