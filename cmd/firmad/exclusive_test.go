package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store/postgres"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
)

// Two nodes on one PostgreSQL store: the job runs on one at a time.
func TestExclusiveJobOneNodeAtATime(t *testing.T) {
	dsn := pgtest.New(t)
	ctx := context.Background()
	var running, maxRunning, runs atomic.Int32
	job := func(ctx context.Context) {
		n := running.Add(1)
		runs.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done()
		running.Add(-1)
	}
	var stops []context.CancelFunc
	var wg sync.WaitGroup
	for range 2 {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		a := &app{store: db}
		nctx, stop := context.WithCancel(ctx)
		stops = append(stops, stop)
		wg.Go(func() { a.exclusive(nctx, "test-job", slog.New(slog.DiscardHandler), job) })
	}
	waitFor(t, func() bool { return running.Load() == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := maxRunning.Load(); got != 1 {
		t.Fatalf("%d nodes ran the job at once", got)
	}
	stops[0]()
	stops[1]()
	wg.Wait()
	if running.Load() != 0 {
		t.Fatal("job still running after both nodes stopped")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
