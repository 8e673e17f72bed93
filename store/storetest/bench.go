package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

// Bench measures the store calls on a signature's path, each on a new
// database from open, from parallel goroutines as a loaded node makes them.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	ctx := context.Background()
	b.Run("CreateTransaction", func(b *testing.B) {
		db := open(b)
		benchPortal(b, db)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tx, docs := newTx(fmt.Sprintf("%032x", n.Add(1)), time.Now().UTC())
				if err := db.CreateTransaction(ctx, tx, docs, 1<<30); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("UpdateTransaction", func(b *testing.B) {
		db := open(b)
		benchPortal(b, db)
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			tx, docs := newTx(fmt.Sprintf("%032x", n.Add(1)), time.Now().UTC())
			if err := db.CreateTransaction(ctx, tx, docs, 0); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				tx.OTPTries++
				if err := db.UpdateTransaction(ctx, tx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("AllocTSASerials", func(b *testing.B) {
		db := open(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.AllocTSASerials(ctx, "default", 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("AppendAudit/batch=%d/flush", size), func(b *testing.B) {
			db := open(b)
			b.ResetTimer()
			for i := range b.N {
				recs := make([]*store.AuditRecord, size)
				for j := range recs {
					recs[j] = auditRec(int64(i*size+j), "key.used", "success", "c", "p", "k", 1)
				}
				if err := db.AppendAudit(ctx, recs, hashesFor(recs), true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
	b.Run("Transaction", func(b *testing.B) {
		db := open(b)
		benchPortal(b, db)
		tx, docs := newTx(fmt.Sprintf("%032x", 1), time.Now().UTC())
		if err := db.CreateTransaction(ctx, tx, docs, 0); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.Transaction(ctx, tx.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchPortal(b *testing.B, db store.Store) {
	now := time.Now().UTC()
	if err := db.CreatePortal(context.Background(), &store.Portal{ID: testPortal, Name: "p", RedirectURLs: []string{"https://a/"},
		Status: store.PortalActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
}
