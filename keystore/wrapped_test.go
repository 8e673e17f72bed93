package keystore

import (
	"context"
	"crypto"
	"crypto/sha256"
	"path/filepath"
	"testing"

	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A wrapped key is cached on its second use, not its first, and served
// from the cache after that.
func TestLiveCacheAdmitsOnSecondUse(t *testing.T) {
	tok := softhsmtest.New(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, CacheSize: 4}
	ks, err := Open(context.Background(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.InitKEK(context.Background()); err != nil {
		t.Fatal(err)
	}
	ks.Close()
	cfg.Mode, cfg.Registerer = ModeWrapped, prometheus.NewRegistry()
	if ks, err = Open(context.Background(), cfg, st, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	key, err := ks.Generate(context.Background(), "12345678Z", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		unwraps, hits float64
		cached        int
	}{
		{1, 0, 0}, // first use: unwrapped, signed, destroyed
		{2, 0, 1}, // second use: unwrapped and kept
		{2, 1, 1}, // third: served live
		{2, 2, 1},
	}
	for i, s := range steps {
		signOK(t, ks, key)
		u, h := testutil.ToFloat64(ks.m.unwraps), testutil.ToFloat64(ks.m.hits)
		ks.live.mu.Lock()
		n := ks.live.lru.Len()
		ks.live.mu.Unlock()
		if u != s.unwraps || h != s.hits || n != s.cached {
			t.Fatalf("use %d: %v unwraps, %v hits, %d cached; want %v, %v, %d", i+1, u, h, n, s.unwraps, s.hits, s.cached)
		}
	}
	// Keys used once each, many of them, leave the cache as it was.
	for i := 0; i < 6; i++ {
		k, err := ks.Generate(context.Background(), "87654321X", ECP256)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := ks.Signer(context.Background(), k.ID)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte("once"))
		if _, err := sg.SignDigests(context.Background(), ECDSA, crypto.SHA256, [][]byte{d[:]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := ks.live.lru.Peek(key.ID); !ok {
		t.Fatal("keys used once pushed a reused key out of the cache")
	}
}
