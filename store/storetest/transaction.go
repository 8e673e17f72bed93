package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testTransactions(t *testing.T, open Open) {
	cases(t, open, []test{
		{"rate limit across handles", txRateLimit},
		{"conditional updates", txConditionalUpdates},
		{"one step wins across handles", txOneStepWins},
		{"draft batches", txDraftBatch},
		{"round trip", txRoundTrip},
		{"listing, purge and callbacks", txListPurgeCallbacks},
	})
}

const testPortal = "ABCDEF012345"

func addPortal(t *testing.T, db store.Store) {
	t.Helper()
	now := time.Now().UTC()
	if err := db.CreatePortal(context.Background(), &store.Portal{ID: testPortal, Name: "p", RedirectURLs: []string{"https://a/"},
		Status: store.PortalActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

func newTx(id string, at time.Time) (*store.Transaction, []*store.Document) {
	t := &store.Transaction{ID: id, PortalID: "ABCDEF012345", CitizenID: "12345678Z", State: "created", ApprovalDigest: []byte{1},
		CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}
	docs := []*store.Document{{Index: 0, Name: "a", Format: "raw", Hash: "sha256", Digest: make([]byte, 32), Status: "pending"},
		{Index: 1, Name: "b", Format: "cades", Hash: "sha256", Digest: make([]byte, 32), Content: []byte("b"), Size: 1, Status: "pending",
			SignOptions: []byte(`{"op":"cosign"}`)}}
	return t, docs
}

// txRateLimit creates from many goroutines on two handles, hence many
// pooled connections and two nodes: the limit is the store's, so exactly
// that many get through.
func txRateLimit(t *testing.T, db store.Store, reopen Reopen) {
	addPortal(t, db)
	other := reopen(t)
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
			h := db
			if i%2 == 1 {
				h = other
			}
			errs[i] = h.CreateTransaction(ctx, tx, docs, limit)
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

func txConditionalUpdates(t *testing.T, db store.Store, _ Reopen) {
	addPortal(t, db)
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
	// A signature stored hidden ("recording") before its key.used, then
	// marked signed from that status, as the signing worker does.
	d2 := *docs[1]
	d2.TransactionID, d2.Status, d2.Result = tx.ID, "recording", []byte("sig2")
	skipped, err := db.UpdateDocuments(ctx, []*store.Document{&d, &d2}, "pending")
	if err != nil || len(skipped) != 1 || skipped[0] != 0 {
		t.Fatalf("batch update: skipped %v, %v", skipped, err)
	}
	d2.Status = "signed"
	for i, want := range [][]int{nil, {1}} {
		if skipped, err := db.UpdateDocuments(ctx, []*store.Document{&d2}, "recording"); err != nil || !slices.Equal(skipped, want) {
			t.Fatalf("recording to signed, try %d: skipped %v, %v; want %v", i, skipped, err, want)
		}
	}
	full, err := db.Documents(ctx, tx.ID, true)
	if err != nil || len(full) != 2 || full[0].Status != "signed" || string(full[0].Result) != "sig" || full[1].Status != "signed" ||
		string(full[1].Result) != "sig2" || string(full[1].Content) != "b" ||
		string(full[1].SignOptions) != `{"op":"cosign"}` || full[0].SignOptions != nil {
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

// txOneStepWins has many goroutines on two handles try the same step from
// the same read: exactly one update may land, the rest get ErrConflict.
func txOneStepWins(t *testing.T, db store.Store, reopen Reopen) {
	addPortal(t, db)
	other := reopen(t)
	ctx := context.Background()
	now := time.Now().UTC()
	tx, docs := newTx(fmt.Sprintf("%032x", 5), now)
	if err := db.CreateTransaction(ctx, tx, docs, 0); err != nil {
		t.Fatal(err)
	}
	const tries = 16
	var (
		wg   sync.WaitGroup
		wins = make([]bool, tries)
	)
	// Every contender reads before any writes.
	handles, reads := make([]store.Store, tries), make([]*store.Transaction, tries)
	for i := range tries {
		handles[i] = db
		if i%2 == 1 {
			handles[i] = other
		}
		var err error
		if reads[i], err = handles[i].Transaction(ctx, tx.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tries {
		h, read := handles[i], reads[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			read.OTPTries++
			read.State = fmt.Sprintf("step-%d", i)
			err := h.UpdateTransaction(ctx, read)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Errorf("update %d: %v", i, err)
			}
			wins[i] = err == nil
		}()
	}
	wg.Wait()
	won := -1
	for i, w := range wins {
		if w {
			if won >= 0 {
				t.Fatalf("updates %d and %d both won", won, i)
			}
			won = i
		}
	}
	got, err := db.Transaction(ctx, tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	if won < 0 || got.State != fmt.Sprintf("step-%d", won) || got.OTPTries != 1 || got.Version != 2 {
		t.Fatalf("after the race: winner %d, stored state %q, tries %d, version %d", won, got.State, got.OTPTries, got.Version)
	}
}

func txDraftBatch(t *testing.T, db store.Store, _ Reopen) {
	addPortal(t, db)
	ctx := context.Background()
	now := time.Now().UTC()
	tx, _ := newTx(fmt.Sprintf("%032x", 9), now)
	tx.State, tx.ApprovalDigest = "draft", nil
	if err := db.CreateTransaction(ctx, tx, nil, 0); err != nil {
		t.Fatal(err)
	}
	stale := *tx
	for i := range 3 {
		d := &store.Document{Index: i, Name: fmt.Sprintf("d%d", i), Format: "raw", Hash: "sha256", Digest: make([]byte, 32), Status: "pending"}
		if err := db.AddDocument(ctx, tx, d); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if tx.Version != 4 {
		t.Fatalf("version after three adds %d, want 4", tx.Version)
	}
	steps := []struct {
		name string
		tx   *store.Transaction
		doc  int
	}{
		{"stale version", &stale, 7},
		{"index taken", tx, 1},
	}
	for _, s := range steps {
		d := &store.Document{Index: s.doc, Name: "x", Format: "raw", Hash: "sha256", Digest: make([]byte, 32), Status: "pending"}
		if err := db.AddDocument(ctx, s.tx, d); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", s.name, err)
		}
	}
	got, err := db.Transaction(ctx, tx.ID)
	if err != nil || got.Version != tx.Version {
		t.Fatalf("refused adds changed the batch: %+v %v", got, err)
	}
	if len(got.ApprovalDigest) != 0 {
		t.Errorf("approval digest of a draft %x", got.ApprovalDigest)
	}
	got.State = "created"
	if err := db.UpdateTransaction(ctx, got); err != nil {
		t.Fatal(err)
	}
	d := &store.Document{Index: 3, Name: "late", Format: "raw", Hash: "sha256", Digest: make([]byte, 32), Status: "pending"}
	if err := db.AddDocument(ctx, got, d); !errors.Is(err, store.ErrConflict) {
		t.Errorf("add to a closed batch: %v, want ErrConflict", err)
	}
	docs, err := db.Documents(ctx, tx.ID, false)
	if err != nil || len(docs) != 3 {
		t.Fatalf("documents %d, %v", len(docs), err)
	}
}

// txRoundTrip stores every field and reads back the same values.
func txRoundTrip(t *testing.T, db store.Store, _ Reopen) {
	addPortal(t, db)
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 123456789).UTC()
	tx := &store.Transaction{ID: fmt.Sprintf("%032x", 3), PortalID: testPortal, CitizenID: "12345678Z", State: "created", StopOnError: true,
		Level: "B-T", OKURL: "https://a/ok", ErrorURL: "https://a/ko", IdempotencyKey: "idem", RequestHash: []byte{9}, ApprovalDigest: []byte{1, 2},
		SessionHash: []byte{3}, OTPHash: []byte{4}, OTPExpiresAt: at.Add(time.Minute), OTPSends: 2, OTPSentAt: at.Add(time.Second), OTPTries: 1,
		CertificateID: "cert", KeyID: "key", Summary: "all_signed", ErrorCode: "e", ErrorMessage: "m", CreatedAt: at, UpdatedAt: at.Add(2),
		ExpiresAt: at.Add(time.Hour), AuthenticatedAt: at.Add(3), ApprovedAt: at.Add(4), EndedAt: at.Add(5), CallbackState: "pending",
		CallbackAttempts: 3, CallbackNextAt: at.Add(6), CallbackError: "timeout"}
	signed := &store.Document{Index: 0, Name: "a.pdf", MediaType: "application/pdf", Format: "pades", Hash: "sha384", Digest: []byte{7, 7},
		Content: []byte("%PDF"), Size: 4, Status: "signed", ErrorCode: "", Result: []byte("signed"), Timestamped: true,
		TimestampToken: []byte{0x30}, TimestampedAt: at.Add(7), SignedAt: at.Add(8), Appearance: []byte(`{"page":2}`)}
	if err := db.CreateTransaction(ctx, tx, []*store.Document{signed}, 0); err != nil {
		t.Fatal(err)
	}
	got, err := db.Transaction(ctx, tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tx) {
		t.Errorf("transaction round trip\n got %+v\nwant %+v", got, tx)
	}
	// The document outcome columns are written by UpdateDocument.
	if err := db.UpdateDocument(ctx, &store.Document{TransactionID: tx.ID, Index: 0, Status: "signed", Result: signed.Result,
		Timestamped: true, TimestampToken: signed.TimestampToken, TimestampedAt: signed.TimestampedAt, SignedAt: signed.SignedAt}, "signed"); err != nil {
		t.Fatal(err)
	}
	docs, err := db.Documents(ctx, tx.ID, true)
	if err != nil || len(docs) != 1 {
		t.Fatalf("documents %v %v", docs, err)
	}
	signed.TransactionID = tx.ID
	if fmt.Sprintf("%+v", docs[0]) != fmt.Sprintf("%+v", signed) {
		t.Errorf("document round trip\n got %+v\nwant %+v", docs[0], signed)
	}
	short, _ := db.Documents(ctx, tx.ID, false)
	if len(short) != 1 || short[0].Content != nil || short[0].Result != nil || short[0].TimestampToken != nil || short[0].Appearance != nil || !short[0].Timestamped {
		t.Errorf("documents without content: %+v", short)
	}
}

func txListPurgeCallbacks(t *testing.T, db store.Store, _ Reopen) {
	addPortal(t, db)
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range 5 {
		tx, docs := newTx(fmt.Sprintf("%032x", 100+i), now)
		docs[1].Appearance = []byte(`{"page":1}`)
		if i < 2 {
			tx.State, tx.EndedAt = "done", now.Add(-time.Hour)
			docs[0].Result = []byte("r")
		}
		if i == 4 {
			tx.CitizenID = "99999999R"
			tx.CallbackState, tx.CallbackNextAt = "pending", now.Add(-time.Second)
		}
		if err := db.CreateTransaction(ctx, tx, docs, 0); err != nil {
			t.Fatal(err)
		}
	}
	lists := []struct {
		name string
		f    store.TransactionFilter
		want int
	}{
		{"all", store.TransactionFilter{}, 5},
		{"page", store.TransactionFilter{Limit: 2}, 2},
		{"after", store.TransactionFilter{After: fmt.Sprintf("%032x", 102)}, 2},
		{"portal", store.TransactionFilter{PortalID: testPortal}, 5},
		{"other portal", store.TransactionFilter{PortalID: "nope"}, 0},
		{"citizen", store.TransactionFilter{CitizenID: "99999999R"}, 1},
		{"state", store.TransactionFilter{State: "done"}, 2},
		{"state and citizen", store.TransactionFilter{State: "done", CitizenID: "99999999R"}, 0},
	}
	for _, l := range lists {
		got, err := db.Transactions(ctx, l.f)
		if err != nil || len(got) != l.want {
			t.Errorf("%s: %d transactions, %v; want %d", l.name, len(got), err, l.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].ID >= got[i].ID {
				t.Errorf("%s: not ordered by ID", l.name)
			}
		}
	}
	// Purge: the two ended transactions' four documents, at most one
	// transaction a call.
	var purged int64
	for range 3 {
		n, err := db.PurgeDocuments(ctx, now, 1)
		if err != nil {
			t.Fatal(err)
		}
		purged += n
	}
	if purged != 4 {
		t.Errorf("purged %d documents, want 4", purged)
	}
	for i := range 5 {
		docs, err := db.Documents(ctx, fmt.Sprintf("%032x", 100+i), true)
		if err != nil || len(docs) != 2 {
			t.Fatalf("documents: %v", err)
		}
		if emptied := docs[1].Content == nil && docs[0].Result == nil && docs[1].SignOptions == nil && docs[1].Appearance == nil; emptied != (i < 2) {
			t.Errorf("transaction %d: emptied %v", i, emptied)
		}
		if len(docs[0].Digest) != 32 {
			t.Errorf("transaction %d: purge dropped the digest", i)
		}
	}
	due, err := db.CallbacksDue(ctx, now, 10)
	if err != nil || len(due) != 1 || due[0].ID != fmt.Sprintf("%032x", 104) {
		t.Errorf("callbacks due: %v %v", due, err)
	}
	if due, _ := db.CallbacksDue(ctx, now.Add(-time.Minute), 10); len(due) != 0 {
		t.Errorf("callbacks due a minute ago: %d", len(due))
	}
	if due, err := db.TransactionsDue(ctx, nil, now, 10); err != nil || len(due) != 0 {
		t.Errorf("due in no state: %v %v", due, err)
	}
	if due, _ := db.TransactionsDue(ctx, []string{"created", "done"}, time.Time{}, 10); len(due) != 5 {
		t.Errorf("due in any time: %d", len(due))
	}
}
