package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testAttempts(t *testing.T, open Open) {
	cases(t, open, []test{
		{"round trip and reset", attemptsRoundTrip},
		{"concurrent across handles", attemptsConcurrent},
		{"sweep", attemptsSweep},
	})
}

func attemptsRoundTrip(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if n, last, until, err := db.Attempts(ctx, "otp:none"); err != nil || n != 0 || !last.IsZero() || !until.IsZero() {
		t.Fatalf("missing scope: %d %s %s %v", n, last, until, err)
	}
	steps := []struct {
		name        string
		n           int
		last, until time.Time
	}{
		{"first", 1, now, time.Time{}},
		{"second", 2, now.Add(time.Second), time.Time{}},
		{"locked", 3, now.Add(2 * time.Second), now.Add(15 * time.Minute)},
	}
	for _, s := range steps {
		var seen int
		err := db.UpdateAttempts(ctx, "otp:a", func(n int, _, _ time.Time) (int, time.Time, time.Time) {
			seen = n
			return s.n, s.last, s.until
		})
		if err != nil || seen != s.n-1 {
			t.Fatalf("%s: fn saw %d, want %d; %v", s.name, seen, s.n-1, err)
		}
		h := db
		if reopen != nil {
			h = reopen(t) // what one node wrote, another reads
		}
		n, last, until, err := h.Attempts(ctx, "otp:a")
		if err != nil || n != s.n || !last.Equal(s.last) || !until.Equal(s.until) {
			t.Fatalf("%s: read %d %s %s %v, want %d %s %s", s.name, n, last, until, err, s.n, s.last, s.until)
		}
	}
	if n, _, _, err := db.Attempts(ctx, "otp:b"); err != nil || n != 0 {
		t.Fatalf("another scope: %d %v", n, err)
	}
	if err := db.ResetAttempts(ctx, "otp:a"); err != nil {
		t.Fatal(err)
	}
	if err := db.ResetAttempts(ctx, "otp:a"); err != nil {
		t.Fatalf("reset twice: %v", err)
	}
	if n, last, until, err := db.Attempts(ctx, "otp:a"); err != nil || n != 0 || !last.IsZero() || !until.IsZero() {
		t.Fatalf("after reset: %d %s %s %v", n, last, until, err)
	}
}

// attemptsConcurrent counts from many goroutines on two handles (two
// nodes) at once, capped at a limit the way the policy caps it: no count
// is lost, and the cap is never passed.
func attemptsConcurrent(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	other := db
	if reopen != nil {
		other = reopen(t)
	}
	const (
		workers = 24
		limit   = 10
	)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{} // value each counted update wrote
		capped int
	)
	for i := range workers {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var wrote, ok = 0, false
			// Uncapped too, on its own scope: every increment must land.
			if err := h.UpdateAttempts(ctx, "all", func(n int, last, until time.Time) (int, time.Time, time.Time) {
				return n + 1, last, until
			}); err != nil {
				t.Error(err)
				return
			}
			err := h.UpdateAttempts(ctx, "capped", func(n int, last, until time.Time) (int, time.Time, time.Time) {
				if n >= limit {
					wrote, ok = n, false
					return n, last, until
				}
				wrote, ok = n+1, true
				return n + 1, time.Unix(0, int64(n+1)), until
			})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				counts[wrote]++
			} else {
				capped++
			}
		}()
	}
	wg.Wait()
	if n, _, _, err := db.Attempts(ctx, "all"); err != nil || n != workers {
		t.Fatalf("uncapped: %d counted of %d, %v", n, workers, err)
	}
	n, last, _, err := other.Attempts(ctx, "capped")
	if err != nil || n != limit || last.UnixNano() != limit {
		t.Fatalf("capped: %d (last %d), want %d; %v", n, last.UnixNano(), limit, err)
	}
	// Each value 1..limit written exactly once: no two updates read the
	// same count.
	for v := 1; v <= limit; v++ {
		if counts[v] != 1 {
			t.Fatalf("value %d written %d times (%v)", v, counts[v], counts)
		}
	}
	if capped != workers-limit {
		t.Fatalf("%d refused at the cap, want %d", capped, workers-limit)
	}
}

// attemptsSweep deletes exactly the counters that count nothing any more:
// an ended lock, or a last failure a whole window old; a live lock, a
// failure within the window and a sign-out time within it are kept.
func attemptsSweep(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const window = time.Hour
	rows := []struct {
		scope       string
		last, until time.Time
		kept        bool
	}{
		{"otp:old", now.Add(-window - time.Second), time.Time{}, false},
		{"otp:at-window", now.Add(-window), time.Time{}, false},
		{"otp:recent", now.Add(-window + time.Minute), time.Time{}, true},
		{"password:lock-ended", now.Add(-time.Minute), now.Add(-time.Second), false},
		{"password:locked", now.Add(-2 * window), now.Add(10 * time.Minute), true},
		{"me-signed-out:12345678Z", now.Add(-20 * time.Minute), time.Time{}, true},
		{"me-signed-out:87654321X", now.Add(-2 * window), time.Time{}, false},
	}
	for _, r := range rows {
		if err := db.UpdateAttempts(ctx, r.scope, func(int, time.Time, time.Time) (int, time.Time, time.Time) {
			return 1, r.last, r.until
		}); err != nil {
			t.Fatal(err)
		}
	}
	h := db
	if reopen != nil {
		h = reopen(t) // any node sweeps what every node wrote
	}
	n, err := h.SweepAttempts(ctx, now, window)
	if err != nil || n != 4 {
		t.Fatalf("sweep: %d rows, %v; want 4", n, err)
	}
	for _, r := range rows {
		got, last, _, err := db.Attempts(ctx, r.scope)
		if err != nil {
			t.Fatal(err)
		}
		if kept := got != 0; kept != r.kept || (kept && !last.Equal(r.last)) {
			t.Errorf("%s: kept %v (last %s), want kept %v", r.scope, kept, last, r.kept)
		}
	}
	if n, err := db.SweepAttempts(ctx, now, window); err != nil || n != 0 {
		t.Fatalf("second sweep: %d rows, %v; want 0", n, err)
	}
}
