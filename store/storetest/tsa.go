package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testTSA(t *testing.T, open Open) {
	cases(t, open, []test{
		{"serial sequences", tsaSerials},
		{"serials unique across handles and restart", tsaSerialsAcrossHandles},
		{"units", tsaUnits},
		{"issuance log", tsaIssuance},
		{"issuance batches", tsaIssuanceBatch},
	})
}

func tsaSerials(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	tests := []struct {
		seq   string
		n     int64
		first int64
	}{
		{"default", 1, 1},
		{"default", 1, 2},
		{"default", 100, 3},
		{"default", 1, 103},
		{"other", 5, 1},
		{"other", 1, 6},
		{"default", 2, 104},
	}
	for _, tc := range tests {
		got, err := db.AllocTSASerials(ctx, tc.seq, tc.n)
		if err != nil {
			t.Fatalf("alloc %s %d: %v", tc.seq, tc.n, err)
		}
		if got != tc.first {
			t.Errorf("alloc %s %d = %d, want %d", tc.seq, tc.n, got, tc.first)
		}
	}
	for _, n := range []int64{0, -1} {
		if _, err := db.AllocTSASerials(ctx, "default", n); err == nil {
			t.Errorf("alloc count %d: no error", n)
		}
	}
}

// Two handles on one database stand for two firmad nodes sharing it;
// reopening stands for a restart.
func tsaSerialsAcrossHandles(t *testing.T, a store.Store, reopen Reopen) {
	ctx := context.Background()
	b := reopen(t)
	const workers, per = 8, 50
	var (
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
		errs = make(chan error, workers*per)
	)
	for w := range workers {
		db := a
		if w%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				first, err := db.AllocTSASerials(ctx, "default", 3)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for i := first; i < first+3; i++ {
					if seen[i] {
						errs <- errors.New("serial handed out twice")
					}
					seen[i] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != workers*per*3 {
		t.Fatalf("got %d serials, want %d", len(seen), workers*per*3)
	}
	a.Close()
	b.Close()
	c := reopen(t)
	next, err := c.AllocTSASerials(ctx, "default", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(workers*per*3 + 1); next != want {
		t.Fatalf("after restart got %d, want %d", next, want)
	}
}

func tsaUnits(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &store.TSAUnit{Name: "default", KeyID: "k1", Cert: []byte{0x30, 0x01}, KeySince: now, UpdatedAt: now}
	if _, err := db.TSAUnit(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing unit: got %v, want ErrNotFound", err)
	}
	if err := db.ReplaceTSAUnit(ctx, u, "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replace missing unit: got %v, want ErrNotFound", err)
	}
	if err := db.CreateTSAUnit(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateTSAUnit(ctx, u); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: got %v, want ErrConflict", err)
	}
	later := now.Add(time.Hour)
	next := &store.TSAUnit{Name: "default", KeyID: "k2", Cert: []byte{0x30, 0x02}, KeySince: later, UpdatedAt: later}
	if err := db.ReplaceTSAUnit(ctx, next, "k1"); err != nil {
		t.Fatal(err)
	}
	// A second replica that still saw k1 loses.
	if err := db.ReplaceTSAUnit(ctx, &store.TSAUnit{Name: "default", KeyID: "k3", Cert: []byte{0x30, 0x03}, UpdatedAt: later}, "k1"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale replace: got %v, want ErrConflict", err)
	}
	got, err := db.TSAUnit(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID != "k2" || string(got.Cert) != "\x30\x02" || !got.KeySince.Equal(later) || !got.UpdatedAt.Equal(later) {
		t.Fatalf("unit after replace = %+v", got)
	}
}

func tsaIssuance(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	at := time.Unix(1700000000, 123456789).UTC()
	row := func(interval string, serial int64, client string) *store.TSAIssuance {
		return &store.TSAIssuance{Serial: serial, Interval: interval, KeyID: "tsa-key", IssuedAt: at.Add(time.Duration(serial) * time.Millisecond),
			TokenHash: bytes.Repeat([]byte{byte(serial)}, 32), ImprintHash: "sha-256", Policy: "0.4.0.2023.1.1", Client: client}
	}
	// Stored out of serial order, as concurrent requests finish.
	for _, r := range []*store.TSAIssuance{row("i1", 3, "192.0.2.1"), row("i1", 1, ""), row("i2", 2, "2001:db8::1"), row("i1", 5, "")} {
		if err := db.AddTSAIssuance(ctx, r); err != nil {
			t.Fatalf("add %s/%d: %v", r.Interval, r.Serial, err)
		}
	}
	if err := db.AddTSAIssuance(ctx, row("i1", 3, "")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second row for serial 3: got %v, want ErrConflict", err)
	}
	tests := []struct {
		interval string
		serials  []int64
	}{
		{"i1", []int64{1, 3, 5}},
		{"i2", []int64{2}},
		{"none", nil},
	}
	for _, tc := range tests {
		got, err := db.TSAIssuances(ctx, tc.interval)
		if err != nil {
			t.Fatalf("%s: %v", tc.interval, err)
		}
		if len(got) != len(tc.serials) {
			t.Fatalf("%s: %d rows, want %d", tc.interval, len(got), len(tc.serials))
		}
		for i, r := range got {
			want := row(tc.interval, tc.serials[i], r.Client)
			if r.Serial != tc.serials[i] || r.Interval != want.Interval || r.KeyID != want.KeyID || !r.IssuedAt.Equal(want.IssuedAt) ||
				!bytes.Equal(r.TokenHash, want.TokenHash) || r.ImprintHash != want.ImprintHash || r.Policy != want.Policy {
				t.Errorf("%s row %d = %+v, want %+v", tc.interval, i, r, want)
			}
		}
	}
	if got, _ := db.TSAIssuances(ctx, "i2"); len(got) == 1 && got[0].Client != "2001:db8::1" {
		t.Errorf("client = %q", got[0].Client)
	}
	if reopen == nil {
		return
	}
	// Another node sees the rows.
	got, err := reopen(t).TSAIssuances(ctx, "i1")
	if err != nil || len(got) != 3 {
		t.Fatalf("other handle: %d rows, %v", len(got), err)
	}
}

// tsaIssuanceBatch: a store that takes batches stores all of a batch's
// rows in one commit, or none when one of them conflicts.
func tsaIssuanceBatch(t *testing.T, db store.Store, _ Reopen) {
	bs, ok := db.(store.TSAIssuanceBatchStore)
	if !ok {
		t.Skip("store does not take issuance batches")
	}
	ctx := context.Background()
	row := func(serial int64) *store.TSAIssuance {
		return &store.TSAIssuance{Serial: serial, Interval: "b1", KeyID: "tsa-key", IssuedAt: time.Unix(1700000000+serial, 0).UTC(),
			TokenHash: bytes.Repeat([]byte{byte(serial)}, 32), ImprintHash: "sha-256", Policy: "0.4.0.2023.1.1"}
	}
	if err := bs.AddTSAIssuances(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if err := bs.AddTSAIssuances(ctx, []*store.TSAIssuance{row(2), row(1), row(3)}); err != nil {
		t.Fatalf("batch: %v", err)
	}
	// Serial 3 is taken: nothing of this batch is stored, 4 included.
	if err := bs.AddTSAIssuances(ctx, []*store.TSAIssuance{row(4), row(3)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("batch with a taken serial: got %v, want ErrConflict", err)
	}
	got, err := db.TSAIssuances(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	var serials []int64
	for _, r := range got {
		serials = append(serials, r.Serial)
	}
	if !slices.Equal(serials, []int64{1, 2, 3}) {
		t.Fatalf("stored serials %v, want [1 2 3]", serials)
	}
}
