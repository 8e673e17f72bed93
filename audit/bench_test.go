package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/internal/cputime"
)

// BenchmarkAppend measures committed appends per second, one goroutine
// (every append its own commit) against many (group commit), on SQLite in
// WAL mode through its journal (firmad's default) or straight into the
// tables, without and with an fsync per commit (Flush). It also reports
// the CPU time an append costs (user and system, the whole process), the
// figure that decides how much audit takes from signing on a busy node.
func BenchmarkAppend(b *testing.B) {
	for _, store := range []string{"journal", "tables"} {
		for _, flush := range []bool{false, true} {
			for _, par := range []int{1, 8, 64} {
				name := store + "/" + map[int]string{1: "goroutines=1", 8: "goroutines=8xGOMAXPROCS", 64: "goroutines=64xGOMAXPROCS"}[par]
				if flush {
					name += "/flush"
				}
				b.Run(name, func(b *testing.B) { benchAppend(b, store == "journal", flush, par) })
			}
		}
	}
}

func benchAppend(b *testing.B, journal, flush bool, par int) {
	db, _ := openDB(b)
	if journal {
		if err := db.JournalAudit(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	l, err := audit.Open(context.Background(), db, audit.Options{Node: "bench", Flush: flush})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := sample(0)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
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
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/append")
}
