package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

func txDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().UTC()
	if err := db.CreatePortal(context.Background(), &store.Portal{ID: "ABCDEF012345", Name: "p", RedirectURLs: []string{"https://a/"},
		Status: store.PortalActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return db
}

func newTx(id string, at time.Time) (*store.Transaction, []*store.Document) {
	t := &store.Transaction{ID: id, PortalID: "ABCDEF012345", CitizenID: "12345678Z", State: "created", ApprovalDigest: []byte{1},
		CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}
	docs := []*store.Document{{Index: 0, Name: "a", Format: "raw", Hash: "sha256", Digest: make([]byte, 32), Status: "pending"},
		{Index: 1, Name: "b", Format: "cades", Hash: "sha256", Digest: make([]byte, 32), Content: []byte("b"), Size: 1, Status: "pending"}}
	return t, docs
}

// TestRateLimitHoldsUnderConcurrency creates from many goroutines, hence
// many pooled connections: the limit is the store's, so exactly that many
// get through.
func TestRateLimitHoldsUnderConcurrency(t *testing.T) {
	db := txDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	const limit, tries = 5, 24
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, docs := newTx(fmt.Sprintf("%032x", i), now.Add(time.Duration(i)*time.Millisecond))
			errs[i] = db.CreateTransaction(ctx, tx, docs, limit)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrRateLimited):
			t.Errorf("create: %v", err)
		}
	}
	if ok != limit {
		t.Fatalf("%d created, want %d", ok, limit)
	}
	// A minute later the window has moved on.
	tx, docs := newTx(fmt.Sprintf("%032x", 999), now.Add(61*time.Second))
	if err := db.CreateTransaction(ctx, tx, docs, limit); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
}

func TestConditionalUpdates(t *testing.T) {
	db := txDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	tx, docs := newTx(fmt.Sprintf("%032x", 1), now)
	tx.IdempotencyKey = "k1"
	if err := db.CreateTransaction(ctx, tx, docs, 0); err != nil {
		t.Fatal(err)
	}
	dup, dupDocs := newTx(fmt.Sprintf("%032x", 2), now)
	dup.IdempotencyKey = "k1"
	if err := db.CreateTransaction(ctx, dup, dupDocs, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same idempotency key: %v", err)
	}
	if _, err := db.Transaction(ctx, dup.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused transaction was stored: %v", err)
	}
	if got, err := db.TransactionByIdempotencyKey(ctx, tx.PortalID, "k1"); err != nil || got.ID != tx.ID {
		t.Fatalf("by idempotency key: %v", err)
	}

	a, _ := db.Transaction(ctx, tx.ID)
	b, _ := db.Transaction(ctx, tx.ID)
	a.State, a.OTPHash, a.OTPSends = "otp_sent", []byte("hash"), 1
	if err := db.UpdateTransaction(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.State = "cancelled"
	if err := db.UpdateTransaction(ctx, b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update from a stale read: %v", err)
	}
	got, _ := db.Transaction(ctx, tx.ID)
	if got.State != "otp_sent" || string(got.OTPHash) != "hash" || got.Version != a.Version {
		t.Fatalf("stored %+v", got)
	}
	missing := *got
	missing.ID = fmt.Sprintf("%032x", 77)
	if err := db.UpdateTransaction(ctx, &missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing transaction: %v", err)
	}

	d := *docs[0]
	d.TransactionID, d.Status, d.Result = tx.ID, "signed", []byte("sig")
	if err := db.UpdateDocument(ctx, &d, "pending"); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateDocument(ctx, &d, "pending"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second outcome for a document: %v", err)
	}
	d2 := *docs[1]
	d2.TransactionID, d2.Status = tx.ID, "failed"
	skipped, err := db.UpdateDocuments(ctx, []*store.Document{&d, &d2}, "pending")
	if err != nil || len(skipped) != 1 || skipped[0] != 0 {
		t.Fatalf("batch update: skipped %v, %v", skipped, err)
	}
	full, err := db.Documents(ctx, tx.ID, true)
	if err != nil || len(full) != 2 || full[0].Status != "signed" || string(full[0].Result) != "sig" || full[1].Status != "failed" ||
		string(full[1].Content) != "b" {
		t.Fatalf("documents %+v (%v)", full, err)
	}

	due, err := db.TransactionsDue(ctx, []string{"otp_sent"}, now.Add(11*time.Minute), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: %d %v", len(due), err)
	}
	if due, _ := db.TransactionsDue(ctx, []string{"otp_sent"}, now.Add(time.Minute), 10); len(due) != 0 {
		t.Fatalf("not yet due: %d", len(due))
	}
}
