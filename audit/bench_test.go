package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
)

// BenchmarkAppend measures committed appends per second, one goroutine
// (every append its own transaction) against many (group commit), on
// SQLite in WAL mode, without and with an fsync per commit (Flush).
func BenchmarkAppend(b *testing.B) {
	for _, flush := range []bool{false, true} {
		for _, par := range []int{1, 8, 64} {
			name := map[int]string{1: "goroutines=1", 8: "goroutines=8xGOMAXPROCS", 64: "goroutines=64xGOMAXPROCS"}[par]
			if flush {
				name = "flush/" + name
			}
			b.Run(name, func(b *testing.B) {
				db, _ := openDB(b)
				l, err := audit.Open(context.Background(), db, audit.Options{Node: "bench", Flush: flush})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				rec := sample(0)
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				if par == 1 {
					for i := 0; i < b.N; i++ {
						r := *rec
						if err := l.Append(context.Background(), &r); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(par)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							r := *rec
							if err := l.Append(context.Background(), &r); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			})
		}
	}
}
