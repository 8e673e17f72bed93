package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testFire(t *testing.T, open Open) {
	cases(t, open, []test{
		{"apps", fireApps},
		{"app and portal", fireAppPortal},
		{"transactions", fireTransactions},
		{"documents", fireDocuments},
	})
}

func fireApps(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 9).UTC()
	a := &store.FireApp{AppID: "A1B2C3", PortalID: "P1", CertDigests: []string{"sha256:00ff", "sha1:ab"}, CreatedAt: at, UpdatedAt: at}
	if err := db.PutFireApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.FireApp(ctx, "A1B2C3")
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", a) {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, a)
	}
	// Rotation replaces the digests and keeps the creation time.
	b := *a
	b.CertDigests, b.UpdatedAt, b.CreatedAt = []string{"sha512:01"}, at.Add(time.Hour), at.Add(time.Hour)
	if err := db.PutFireApp(ctx, &b); err != nil {
		t.Fatal(err)
	}
	got, err = db.FireApp(ctx, "A1B2C3")
	if err != nil || len(got.CertDigests) != 1 || got.CertDigests[0] != "sha512:01" || !got.CreatedAt.Equal(at) || !got.UpdatedAt.Equal(b.UpdatedAt) {
		t.Fatalf("after rotation %+v, %v", got, err)
	}
	if err := db.PutFireApp(ctx, &store.FireApp{AppID: "OTHER", PortalID: "P1", CertDigests: []string{}, CreatedAt: at, UpdatedAt: at}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second appid for the portal: %v, want ErrConflict", err)
	}
	if _, err := db.FireApp(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown app: %v", err)
	}
}

// fireAppPortal: the joined read gives what FireApp and Portal give
// apart, and a miss of either is ErrNotFound.
func fireAppPortal(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 7).UTC()
	if err := db.CreatePortal(ctx, &store.Portal{ID: "P1", Name: "portal one", RedirectURLs: []string{"https://a/ok"}, MaxDocuments: 7,
		CertSHA256: []byte{1, 2}, Status: store.PortalActive, CreatedAt: at, UpdatedAt: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	a := &store.FireApp{AppID: "APP1", PortalID: "P1", CertDigests: []string{"sha256:00ff"}, CreatedAt: at, UpdatedAt: at}
	orphan := &store.FireApp{AppID: "APP2", PortalID: "GONE", CertDigests: []string{"sha1:ab"}, CreatedAt: at, UpdatedAt: at}
	for _, x := range []*store.FireApp{a, orphan} {
		if err := db.PutFireApp(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	wantApp, _ := db.FireApp(ctx, "APP1")
	wantPortal, _ := db.Portal(ctx, "P1")
	gotApp, gotPortal, err := db.FireAppPortal(ctx, "APP1")
	if err != nil || fmt.Sprintf("%+v", gotApp) != fmt.Sprintf("%+v", wantApp) || fmt.Sprintf("%+v", gotPortal) != fmt.Sprintf("%+v", wantPortal) {
		t.Fatalf("FireAppPortal = %+v, %+v, %v; want %+v, %+v", gotApp, gotPortal, err, wantApp, wantPortal)
	}
	for _, id := range []string{"nope", "APP2"} {
		if _, _, err := db.FireAppPortal(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FireAppPortal(%s): %v, want ErrNotFound", id, err)
		}
	}
}

func fireTransactions(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 11).UTC()
	ft := &store.FireTransaction{ID: "T1", AppID: "A1", Subject: "12345678Z", Batch: true, OKURL: "https://a/ok?x=1", ErrorURL: "https://a/ko", Upgrade: "T-LEVEL", Format: "CAdES", Algorithm: "SHA256withRSA",
		DocIDs: []string{}, Recovered: []string{}, CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}
	if err := db.CreateFireTransaction(ctx, ft); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateFireTransaction(ctx, ft); !errors.Is(err, store.ErrConflict) {
		t.Errorf("same id twice: %v", err)
	}
	got, err := db.FireTransaction(ctx, "T1")
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", ft) {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, ft)
	}
	got.DocIDs = append(got.DocIDs, "doc1", "doc2")
	if err := db.UpdateFireTransaction(ctx, got); err != nil || got.Version != 1 {
		t.Fatalf("update: %v (version %d)", err, got.Version)
	}
	// A writer holding the old version loses.
	ft.Recovered = []string{"doc1"}
	if err := db.UpdateFireTransaction(ctx, ft); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	other := db
	if reopen != nil {
		other = reopen(t)
	}
	got, err = other.FireTransaction(ctx, "T1")
	if err != nil || len(got.DocIDs) != 2 || got.DocIDs[1] != "doc2" || len(got.Recovered) != 0 || got.Version != 1 {
		t.Fatalf("after update %+v, %v", got, err)
	}
	if err := db.CreateFireTransaction(ctx, &store.FireTransaction{ID: "T2", AppID: "A1", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PurgeFireTransactions(ctx, at.Add(30*time.Minute)); err != nil || n != 1 {
		t.Errorf("purge: %d, %v; want 1", n, err)
	}
	if _, err := db.FireTransaction(ctx, "T1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("purged: %v", err)
	}
	if err := db.DeleteFireTransaction(ctx, "T2"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteFireTransaction(ctx, "T2"); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	got = &store.FireTransaction{ID: "T2", Version: 0}
	if err := db.UpdateFireTransaction(ctx, got); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("updating a deleted one: %v, want ErrNotFound", err)
	}
}

// fireDocuments: addDocumentToBatch's one write stores the document and
// its docid together or neither, and the hand-out mark is taken once.
func fireDocuments(t *testing.T, db store.Store, reopen Reopen) {
	addPortal(t, db)
	ctx := context.Background()
	now := time.Now().UTC()
	tx, _ := newTx(fmt.Sprintf("%032x", 14), now)
	tx.State, tx.ApprovalDigest = "draft", nil
	if err := db.CreateTransaction(ctx, tx, nil, 0); err != nil {
		t.Fatal(err)
	}
	ft := &store.FireTransaction{ID: tx.ID, AppID: "A1", Subject: "12345678Z", Batch: true, DocIDs: []string{}, Recovered: []string{},
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := db.CreateFireTransaction(ctx, ft); err != nil {
		t.Fatal(err)
	}
	doc := func(i int) *store.Document {
		return &store.Document{Index: i, Name: fmt.Sprint("d", i), Format: "raw", Hash: "sha256", Digest: make([]byte, 32), Status: "pending"}
	}
	staleTx, staleFt := *tx, *ft
	for i := range 2 {
		ft.DocIDs = append(ft.DocIDs, fmt.Sprint("id", i))
		if err := db.AddFireDocument(ctx, tx, doc(i), ft); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if tx.Version != staleTx.Version+2 || ft.Version != staleFt.Version+2 {
		t.Errorf("versions %d, %d; want both grown by 2", tx.Version, ft.Version)
	}
	// Either version stale: ErrConflict, and neither the document nor
	// the docid is stored.
	staleFt.DocIDs = []string{"lost"}
	for _, c := range []struct {
		name string
		tx   *store.Transaction
		ft   *store.FireTransaction
	}{{"stale transaction", &staleTx, ft}, {"stale fire transaction", tx, &staleFt}} {
		next := *c.ft
		next.DocIDs = append(slices.Clone(c.ft.DocIDs), "lost")
		if err := db.AddFireDocument(ctx, c.tx, doc(2), &next); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", c.name, err)
		}
	}
	other := db
	if reopen != nil {
		other = reopen(t)
	}
	docs, err := other.Documents(ctx, tx.ID, false)
	if err != nil || len(docs) != 2 {
		t.Fatalf("documents %d, %v; want 2", len(docs), err)
	}
	got, err := other.FireTransaction(ctx, tx.ID)
	if err != nil || !slices.Equal(got.DocIDs, []string{"id0", "id1"}) || got.Version != ft.Version {
		t.Fatalf("fire transaction %+v, %v", got, err)
	}

	// Two requests for one document: the second, at the version it read,
	// loses.
	first, second := *got, *got
	if err := db.MarkFireRecovered(ctx, &first, "id1"); err != nil || !slices.Equal(first.Recovered, []string{"id1"}) || first.Version != got.Version+1 {
		t.Fatalf("mark: %v, %+v", err, first)
	}
	if err := db.MarkFireRecovered(ctx, &second, "id1"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second mark at the old version: %v, want ErrConflict", err)
	}
	if err := db.MarkFireRecovered(ctx, &first, "id0"); err != nil {
		t.Fatal(err)
	}
	if got, err = other.FireTransaction(ctx, tx.ID); err != nil || !slices.Equal(got.Recovered, []string{"id1", "id0"}) || !slices.Equal(got.DocIDs, []string{"id0", "id1"}) {
		t.Fatalf("after marks %+v, %v", got, err)
	}
	if err := db.DeleteFireTransaction(ctx, tx.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkFireRecovered(ctx, got, "id0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("mark on a deleted one: %v, want ErrNotFound", err)
	}
}
