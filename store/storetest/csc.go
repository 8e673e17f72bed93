package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testCSC(t *testing.T, open Open) {
	cases(t, open, []test{
		{"reserve all or nothing", cscReserveAllOrNothing},
		{"reserve concurrent across handles", cscReserveConcurrent},
		{"challenge", cscChallenge},
	})
}

func cscReserveAllOrNothing(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	now := time.Now().UTC()
	h := func(b byte) []byte { return []byte{b, b, b, b} }
	sad := &store.SAD{ID: "sad-1", CredentialID: "crt-1", Caller: "portal-1", CitizenID: "12345678Z", KeyID: "k1", HashAlgo: "2.16.840.1.101.3.4.2.1",
		NumSignatures: 3, Hashes: [][]byte{h(1), h(2), h(3)}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := db.CreateSAD(ctx, sad); err != nil {
		t.Fatal(err)
	}
	dup := *sad
	dup.ID, dup.Hashes = "sad-2", [][]byte{h(1), h(1)}
	if err := db.CreateSAD(ctx, &dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a hash listed twice: %v", err)
	}
	if _, err := db.SAD(ctx, "sad-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused SAD was stored: %v", err)
	}
	steps := []struct {
		name   string
		hashes [][]byte
		at     time.Time
		ok     bool
		used   int
	}{
		{"one not in the SAD", [][]byte{h(1), h(9)}, now, false, 0},
		{"listed twice", [][]byte{h(1), h(1)}, now, false, 0},
		{"two", [][]byte{h(1), h(2)}, now, true, 2},
		{"one spent", [][]byte{h(2)}, now, false, 2},
		{"more than left", [][]byte{h(3), h(9)}, now, false, 2},
		{"after expiry", [][]byte{h(3)}, now.Add(2 * time.Minute), false, 2},
		{"the last", [][]byte{h(3)}, now, true, 3},
	}
	for _, s := range steps {
		err := db.ReserveSAD(ctx, "sad-1", s.hashes, s.at)
		if s.ok != (err == nil) || (err != nil && !errors.Is(err, store.ErrConflict)) {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := db.SAD(ctx, "sad-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Used != s.used || len(got.Spent) != s.used {
			t.Fatalf("%s: used %d, spent %d, want %d", s.name, got.Used, len(got.Spent), s.used)
		}
	}
	// A failed signing gives its hashes back.
	if err := db.ReleaseSAD(ctx, "sad-1", [][]byte{h(3)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.SAD(ctx, "sad-1"); got.Used != 2 {
		t.Fatalf("after release: used %d", got.Used)
	}
	if n, err := db.DeleteExpiredSADs(ctx, now.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("delete expired: %d %v", n, err)
	}
}

func cscReserveConcurrent(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	other := reopen(t)
	now := time.Now().UTC()
	hashes := [][]byte{[]byte("a"), []byte("b")}
	if err := db.CreateSAD(ctx, &store.SAD{ID: "race", CredentialID: "c", Caller: "p", CitizenID: "x", KeyID: "k", HashAlgo: "h",
		NumSignatures: 2, Hashes: hashes, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 20 {
		h := db
		if i%2 == 1 {
			h = other // another node
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.ReserveSAD(ctx, "race", hashes, now); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d reservations of the same hashes won, want 1", wins)
	}
}

func cscChallenge(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := &store.CSCChallenge{ID: "ch", CredentialID: "crt", Caller: "p", CitizenID: "z", Hash: []byte("h1"), Sends: 1, SentAt: now,
		ExpiresAt: now.Add(5 * time.Minute), CreatedAt: now}
	if err := db.PutCSCChallenge(ctx, c, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCSCChallenge(ctx, c, time.Time{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second insert: %v", err)
	}
	// Resend: not before the gap, then up to the limit.
	if _, err := db.ResendCSCChallenge(ctx, "ch", []byte("h2"), 2, now.Add(-time.Second), now, now.Add(5*time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("resend too soon: %v", err)
	}
	got, err := db.ResendCSCChallenge(ctx, "ch", []byte("h2"), 2, now.Add(time.Second), now.Add(time.Second), now.Add(6*time.Minute))
	if err != nil || got.Sends != 2 || string(got.Hash) != "h2" {
		t.Fatalf("resend: %+v %v", got, err)
	}
	if _, err := db.ResendCSCChallenge(ctx, "ch", []byte("h3"), 2, now.Add(time.Hour), now, now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("resend over the limit: %v", err)
	}
	// Spent once. (Wrong codes are counted by the attempt policy on the
	// holder's channel, not on the challenge: see attempts.go.)
	if err := db.UseCSCChallenge(ctx, "ch", now); err != nil {
		t.Fatal(err)
	}
	if err := db.UseCSCChallenge(ctx, "ch", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("use a spent challenge: %v", err)
	}
	// A new challenge replaces it only against the one read.
	next := *c
	next.CreatedAt, next.Hash = now.Add(time.Minute), []byte("n")
	if err := db.PutCSCChallenge(ctx, &next, now.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replace against a stale read: %v", err)
	}
	if err := db.PutCSCChallenge(ctx, &next, now); err != nil {
		t.Fatal(err)
	}
	if err := db.UseCSCChallenge(ctx, "ch", now); err != nil {
		t.Fatal(err)
	}
	if err := db.UseCSCChallenge(ctx, "ch", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second use: %v", err)
	}
	if _, err := db.CSCChallenge(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}
