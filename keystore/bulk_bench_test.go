package keystore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

// BenchmarkEnrolWrapped compares enrolling citizens in wrapped mode one
// key at a time (Generate: one store commit per key, one session busy)
// with GenerateWrappedBatch (every session, one commit per batch). It
// reports keys/s.
func BenchmarkEnrolWrapped(b *testing.B) {
	ctx := context.Background()
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ks := openWrapped(b)
			owners := make([]string, batch)
			n := 0
			b.ResetTimer()
			for b.Loop() {
				for i := range owners {
					owners[i] = fmt.Sprintf("B%08d", n)
					n++
				}
				if batch == 1 {
					if _, err := ks.Generate(ctx, owners[0], keystore.ECP256); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, err := ks.GenerateWrappedBatch(ctx, owners, keystore.ECP256); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// openWrapped opens a keystore in wrapped mode on a fresh token and store.
func openWrapped(tb testing.TB) *keystore.HSM {
	tb.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(tb)
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "firma.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	cfg := keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}
	ks, err := keystore.Open(ctx, cfg, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ks.InitKEK(ctx); err != nil {
		tb.Fatal(err)
	}
	ks.Close()
	cfg.Mode = keystore.ModeWrapped
	if ks, err = keystore.Open(ctx, cfg, st, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ks.Close() })
	return ks
}
