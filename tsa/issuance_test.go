package tsa

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

// gatedStore is a real SQLite issuance log whose first single-row write
// waits for gate, so that a test can queue rows behind it; it counts the
// batches it commits.
type gatedStore struct {
	*sqlite.DB
	gate    chan struct{}
	first   atomic.Bool
	batches atomic.Int64
	sizes   sync.Map // batch size -> true
}

func (g *gatedStore) AddTSAIssuance(ctx context.Context, r *store.TSAIssuance) error {
	if g.first.CompareAndSwap(false, true) {
		<-g.gate
	}
	return g.DB.AddTSAIssuance(ctx, r)
}

func (g *gatedStore) AddTSAIssuances(ctx context.Context, rs []*store.TSAIssuance) error {
	g.batches.Add(1)
	g.sizes.Store(len(rs), true)
	return g.DB.AddTSAIssuances(ctx, rs)
}

func issuanceRow(interval string, serial int64) *store.TSAIssuance {
	return &store.TSAIssuance{Serial: serial, Interval: interval, KeyID: "k", IssuedAt: time.Unix(serial, 0).UTC(),
		TokenHash: make([]byte, 32), ImprintHash: "sha-256", Policy: "1.2.3", Client: "127.0.0.1"}
}

// TestIssuanceGroupCommit: rows arriving while a commit is under way are
// committed together in the next one, every row is stored once, and a
// row whose serial is taken fails alone, with ErrConflict.
func TestIssuanceGroupCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cases := []struct {
		name      string
		rows      int
		dup       bool // one queued row repeats the first one's serial
		wantBatch int  // rows of the one batch behind the first
	}{
		{"queued rows share a commit", 20, false, 19},
		{"a conflicting row fails alone", 10, true, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &gatedStore{DB: db, gate: make(chan struct{})}
			l := newIssuanceLog(g)
			interval := "iv-" + c.name
			errs := make([]error, c.rows)
			var wg sync.WaitGroup
			wg.Go(func() { errs[0] = l.add(ctx, issuanceRow(interval, 1)) })
			for !g.first.Load() {
				time.Sleep(time.Millisecond)
			}
			for i := 1; i < c.rows; i++ {
				serial := int64(i + 1)
				if c.dup && i == c.rows-1 {
					serial = 1
				}
				wg.Go(func() { errs[i] = l.add(ctx, issuanceRow(interval, serial)) })
			}
			for {
				l.mu.Lock()
				n := len(l.pending)
				l.mu.Unlock()
				if n == c.rows-1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			close(g.gate)
			wg.Wait()
			if _, ok := g.sizes.Load(c.wantBatch); !ok || g.batches.Load() != 1 {
				t.Errorf("want the %d queued rows in one batch; got %d batches", c.wantBatch, g.batches.Load())
			}
			want := c.rows
			for i, err := range errs {
				switch {
				case c.dup && i == c.rows-1:
					if !errors.Is(err, store.ErrConflict) {
						t.Errorf("duplicate serial: got %v, want ErrConflict", err)
					}
					want--
				case err != nil:
					t.Errorf("row %d: %v", i, err)
				}
			}
			got, err := db.TSAIssuances(ctx, interval)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want {
				t.Fatalf("stored %d rows, want %d", len(got), want)
			}
			for i, r := range got {
				if r.Serial != int64(i+1) {
					t.Errorf("row %d: serial %d, want %d", i, r.Serial, i+1)
				}
			}
		})
	}
}

// TestIssuanceConcurrent stores rows from many goroutines at once, with
// no gate: each is stored exactly once whatever the batching.
func TestIssuanceConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := newIssuanceLog(db)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := l.add(ctx, issuanceRow("iv", int64(w*each+i+1))); err != nil {
					t.Error(fmt.Errorf("row %d/%d: %w", w, i, err))
				}
			}
		})
	}
	wg.Wait()
	got, err := db.TSAIssuances(ctx, "iv")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Fatalf("stored %d rows, want %d", len(got), workers*each)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leading || len(l.pending) > 0 {
		t.Errorf("log left leading=%v with %d rows pending", l.leading, len(l.pending))
	}
}
