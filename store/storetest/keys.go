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
