package keystore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/firma-cloud/firma/store"
)

// BatchStore is a key store that inserts many records in one database
// transaction. Bulk enrolment uses it when the keystore's store has it:
// one commit per batch instead of one per key is what lets a million
// citizens be enrolled in minutes.
type BatchStore interface {
	CreateKeys(ctx context.Context, keys []*store.Key) error
}

// ErrBatchStore is returned by GenerateWrappedBatch when the store cannot
// insert in batches.
var ErrBatchStore = errors.New("store cannot insert key records in batches")

// GenerateWrappedBatch makes one wrapped key of type t for each owner, in
// parallel over the session pool, and writes all the records in one batch.
// Either every key is stored or none is: a failure discards the blobs,
// which were never anywhere but in memory.
func (k *HSM) GenerateWrappedBatch(ctx context.Context, owners []string, t Type) ([]*Key, error) {
	bs, ok := k.store.(BatchStore)
	if !ok {
		return nil, fmt.Errorf("generate wrapped keys: %w", ErrBatchStore)
	}
	if t.curve() == nil && t.rsaBits() == 0 {
		return nil, fmt.Errorf("generate wrapped keys: type %q: %w", t, ErrUnsupported)
	}
	for i, o := range owners {
		if o == "" {
			return nil, fmt.Errorf("generate wrapped keys: owner %d: %w", i, ErrOwner)
		}
	}
	if len(owners) == 0 {
		return nil, nil
	}
	// Warm the KEK handle once so that workers do not queue on its lock.
	if _, err := k.kekHandle(ctx); err != nil {
		return nil, fmt.Errorf("generate wrapped keys: %w", err)
	}
	keys := make([]*Key, len(owners))
	recs := make([]*store.Key, len(owners))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		next     = make(chan int)
	)
	workers := min(k.pool.Size(), len(owners))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rec, key, err := k.wrappedRecord(ctx, owners[i], t)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				keys[i], recs[i] = key, rec
			}
		}()
	}
feed:
	for i := range owners {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		k.m.ops.WithLabelValues("generate", "error").Add(float64(len(owners)))
		return nil, fmt.Errorf("generate wrapped keys: %w", firstErr)
	}
	if err := bs.CreateKeys(ctx, recs); err != nil {
		k.m.ops.WithLabelValues("generate", "error").Add(float64(len(owners)))
		return nil, fmt.Errorf("generate wrapped keys: %w", err)
	}
	k.m.ops.WithLabelValues("generate", "ok").Add(float64(len(owners)))
	return keys, nil
}

// wrappedRecord makes one wrapped key and its store record.
func (k *HSM) wrappedRecord(ctx context.Context, owner string, t Type) (*store.Key, *Key, error) {
	key, _, err := newKey(owner, t, ModeWrapped)
	if err != nil {
		return nil, nil, err
	}
	blob, err := k.generateWrapped(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", owner, err)
	}
	rec, err := key.record(blob)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", owner, err)
	}
	return rec, key, nil
}
