package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testKeys(t *testing.T, open Open) {
	cases(t, open, []test{
		{"create, list and destroy", keysLifecycle},
		{"bulk create all or nothing", keysBulk},
	})
}

func keysLifecycle(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 42).UTC()
	for i := range 5 {
		k := &store.Key{ID: fmt.Sprintf("k%d", i), Owner: []string{"alice", "bob"}[i%2], Type: "ec-p256", Mode: "wrapped",
			PublicKey: []byte{0x30, byte(i)}, Wrapped: []byte{1, 2, byte(i)}, CreatedAt: at}
		if err := db.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateKey(ctx, &store.Key{ID: "k1", Owner: "x", Type: "ec-p256", Mode: "token", PublicKey: []byte{1}, CreatedAt: at}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate id: %v, want ErrConflict", err)
	}
	got, err := db.Key(ctx, "k2")
	want := &store.Key{ID: "k2", Owner: "alice", Type: "ec-p256", Mode: "wrapped", PublicKey: []byte{0x30, 2}, Wrapped: []byte{1, 2, 2}, CreatedAt: at}
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("key round trip %+v, %v; want %+v", got, err, want)
	}
	lists := []struct {
		owner, after string
		limit        int
		want         string
	}{
		{"", "", 0, "k0 k1 k2 k3 k4"},
		{"alice", "", 0, "k0 k2 k4"},
		{"bob", "", 1, "k1"},
		{"bob", "k1", 10, "k3"},
		{"", "k3", 10, "k4"},
		{"carol", "", 10, ""},
	}
	for _, l := range lists {
		keys, err := db.Keys(ctx, l.owner, l.after, l.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		if s := fmt.Sprint(ids); s != "["+l.want+"]" {
			t.Errorf("Keys(%q, %q, %d) = %s, want [%s]", l.owner, l.after, l.limit, s, l.want)
		}
	}
	gone := at.Add(time.Hour)
	if err := db.DestroyKey(ctx, "k2", gone); err != nil {
		t.Fatal(err)
	}
	// Destroying again keeps the first time.
	if err := db.DestroyKey(ctx, "k2", gone.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err = db.Key(ctx, "k2")
	if err != nil || !got.Destroyed() || !got.DestroyedAt.Equal(gone) || got.Wrapped != nil {
		t.Fatalf("destroyed key %+v, %v", got, err)
	}
	if err := db.DestroyKey(ctx, "nope", gone); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("destroy missing: %v, want ErrNotFound", err)
	}
	if _, err := db.Key(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing key: %v, want ErrNotFound", err)
	}
}

// bulkKeys is the batch write keystore.BatchStore needs for bulk enrolment;
// every backend has it.
type bulkKeys interface {
	CreateKeys(ctx context.Context, keys []*store.Key) error
}

func keysBulk(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	bulk, ok := db.(bulkKeys)
	if !ok {
		t.Fatalf("%T has no CreateKeys", db)
	}
	at := time.Unix(1_700_000_000, 0).UTC()
	var keys []*store.Key
	for i := range 500 {
		keys = append(keys, &store.Key{ID: fmt.Sprintf("k%04d", i), Owner: fmt.Sprintf("%08dR", i), Type: "ec-p256", Mode: "wrapped",
			PublicKey: []byte{0x30, byte(i)}, Wrapped: []byte{byte(i), 1}, CreatedAt: at})
	}
	if err := bulk.CreateKeys(ctx, keys); err != nil {
		t.Fatal(err)
	}
	got, err := db.Key(ctx, "k0499")
	if err != nil || got.Owner != "00000499R" || got.Wrapped[0] != byte(499%256) || !got.CreatedAt.Equal(at) {
		t.Fatalf("bulk key %+v %v", got, err)
	}
	tests := []struct {
		name string
		keys []*store.Key
	}{
		{"an ID taken before", []*store.Key{{ID: "new1", Owner: "x", Type: "ec-p256", Mode: "wrapped", PublicKey: []byte{1}, CreatedAt: at}, keys[5]}},
		{"an ID twice", []*store.Key{
			{ID: "new2", Owner: "x", Type: "ec-p256", Mode: "wrapped", PublicKey: []byte{1}, CreatedAt: at},
			{ID: "new2", Owner: "y", Type: "ec-p256", Mode: "wrapped", PublicKey: []byte{1}, CreatedAt: at}}},
	}
	for _, tc := range tests {
		if err := bulk.CreateKeys(ctx, tc.keys); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", tc.name, err)
		}
		if _, err := db.Key(ctx, tc.keys[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: the refused batch stored %s: %v", tc.name, tc.keys[0].ID, err)
		}
	}
	if err := bulk.CreateKeys(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}
