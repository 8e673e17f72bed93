package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testPortals(t *testing.T, open Open) {
	cases(t, open, []test{
		{"create, find and update", portalsLifecycle},
	})
}

func portalsLifecycle(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 7).UTC()
	p := &store.Portal{ID: "P1", Name: "agencia", RedirectURLs: []string{"https://a/ok", "https://a/ko"}, APIKeyHash: []byte{1},
		CertSHA256: []byte{2, 2}, MaxDocuments: 10, MaxDocBytes: 1 << 20, RatePerMin: 60, CallbackURL: "https://a/cb", CallbackKey: []byte{3},
		Status: store.PortalActive, CreatedAt: at, UpdatedAt: at}
	if err := db.CreatePortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Several portals without a certificate or callback key are fine.
	for _, id := range []string{"P2", "P3"} {
		if err := db.CreatePortal(ctx, &store.Portal{ID: id, Name: "n" + id, RedirectURLs: []string{}, Status: store.PortalActive, CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatalf("portal %s without certificate: %v", id, err)
		}
	}
	conflicts := []struct {
		name string
		p    store.Portal
	}{
		{"same id", store.Portal{ID: "P1", Name: "other", RedirectURLs: []string{}, Status: store.PortalActive}},
		{"same name", store.Portal{ID: "P9", Name: "agencia", RedirectURLs: []string{}, Status: store.PortalActive}},
		{"same certificate", store.Portal{ID: "P9", Name: "other", CertSHA256: []byte{2, 2}, RedirectURLs: []string{}, Status: store.PortalActive}},
	}
	for _, c := range conflicts {
		if err := db.CreatePortal(ctx, &c.p); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", c.name, err)
		}
	}
	got, err := db.Portal(ctx, "P1")
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", p) {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, p)
	}
	if got, err := db.PortalByCert(ctx, []byte{2, 2}); err != nil || got.ID != "P1" {
		t.Errorf("by certificate: %v %v", got, err)
	}
	if _, err := db.PortalByCert(ctx, []byte{9}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown certificate: %v", err)
	}
	p.Status, p.CertSHA256, p.RedirectURLs, p.UpdatedAt = store.PortalDisabled, nil, []string{"https://b/"}, at.Add(time.Hour)
	if err := db.UpdatePortal(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Portal(ctx, "P1"); got.Status != store.PortalDisabled || got.CertSHA256 != nil || got.RedirectURLs[0] != "https://b/" ||
		!got.CreatedAt.Equal(at) || !got.UpdatedAt.Equal(at.Add(time.Hour)) {
		t.Errorf("after update %+v", got)
	}
	p2, _ := db.Portal(ctx, "P2")
	p2.Name = "agencia"
	if err := db.UpdatePortal(ctx, p2); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rename onto a taken name: %v, want ErrConflict", err)
	}
	if err := db.UpdatePortal(ctx, &store.Portal{ID: "P9", Name: "x", Status: store.PortalActive}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update missing: %v, want ErrNotFound", err)
	}
	list, err := db.Portals(ctx, "P1", 1)
	if err != nil || len(list) != 1 || list[0].ID != "P2" {
		t.Errorf("page after P1: %v %v", list, err)
	}
}
