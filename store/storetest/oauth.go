package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testOAuth(t *testing.T, open Open) {
	cases(t, open, []test{
		{"request round trip and versioned updates", oauthRoundTrip},
		{"one of two concurrent updates wins", oauthConcurrent},
	})
}

func oauthRequest(id string, now time.Time) *store.OAuthRequest {
	return &store.OAuthRequest{ID: id, ClientID: "portal-1", RedirectURI: "https://a.example.es/cb", State: "st", CodeChallenge: "ch",
		Scope: "credential", CredentialID: "crt-1", HashAlgo: "2.16.840.1.101.3.4.2.1", NumSignatures: 2,
		Digests: []store.OAuthDigest{{Hash: []byte{1, 2, 3}, Label: "Contrato"}, {Hash: []byte{4, 5, 6}, Label: "Anexo"}},
		Details: `[{"type":"credential"}]`, Status: store.OAuthPushed, CreatedAt: now, ExpiresAt: now.Add(time.Minute), UpdatedAt: now}
}

func oauthRoundTrip(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	r := oauthRequest("req-1", now)
	if err := db.CreateOAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 {
		t.Fatalf("version %d after create", r.Version)
	}
	if err := db.CreateOAuthRequest(ctx, oauthRequest("req-1", now)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate ID: %v", err)
	}
	if _, err := db.OAuthRequest(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	got, err := db.OAuthRequest(ctx, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientID != r.ClientID || got.RedirectURI != r.RedirectURI || got.NumSignatures != 2 || len(got.Digests) != 2 ||
		!bytes.Equal(got.Digests[1].Hash, []byte{4, 5, 6}) || got.Digests[0].Label != "Contrato" || got.Details != r.Details ||
		got.Status != store.OAuthPushed || !got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(r.ExpiresAt) || got.SessionHash != nil {
		t.Fatalf("read back %+v", got)
	}
	got.Status, got.CitizenID, got.SessionHash, got.UpdatedAt = store.OAuthSignedIn, "12345678Z", []byte{9, 9}, now.Add(time.Second)
	if err := db.UpdateOAuthRequest(ctx, got); err != nil || got.Version != 2 {
		t.Fatalf("update: %v, version %d", err, got.Version)
	}
	// A stale copy (version 1) is refused and changes nothing.
	stale := *r
	stale.Status = store.OAuthRejected
	if err := db.UpdateOAuthRequest(ctx, &stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	again, _ := db.OAuthRequest(ctx, "req-1")
	if again.Status != store.OAuthSignedIn || again.CitizenID != "12345678Z" || !bytes.Equal(again.SessionHash, []byte{9, 9}) || again.Version != 2 {
		t.Fatalf("after stale update %+v", again)
	}
	missing := oauthRequest("nope", now)
	if err := db.UpdateOAuthRequest(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of unknown: %v", err)
	}
	// Expiry: only what expired before the time goes.
	if err := db.CreateOAuthRequest(ctx, oauthRequest("req-2", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteExpiredOAuthRequests(ctx, now.Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("delete expired: %d %v", n, err)
	}
	if _, err := db.OAuthRequest(ctx, "req-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired request kept: %v", err)
	}
	if _, err := db.OAuthRequest(ctx, "req-2"); err != nil {
		t.Fatalf("live request deleted: %v", err)
	}
}

// oauthConcurrent: an authorisation code is exchanged once: of updates
// racing from the same version, exactly one wins.
func oauthConcurrent(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.CreateOAuthRequest(ctx, oauthRequest("race", now)); err != nil {
		t.Fatal(err)
	}
	other := db
	if reopen != nil {
		other = reopen(t)
	}
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range n {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Go(func() {
			r, err := h.OAuthRequest(ctx, "race")
			if err != nil {
				t.Error(err)
				return
			}
			r.Version = 1
			r.Status = store.OAuthExchanged
			switch err := h.UpdateOAuthRequest(ctx, r); {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d updates from version 1 won, want 1", wins)
	}
}
