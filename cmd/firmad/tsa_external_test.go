package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/tsa"
)

// With tsa.urls set, firmad's timestamp source is a client of those TSAs
// (here the built-in TSA of another firmad), checking replies against
// tsa.roots: a token from a TSA chaining to them is accepted, and the same
// TSA is refused under roots it does not chain to.
func TestExternalTSAStamper(t *testing.T) {
	s := initState(t)
	d := s.start(t)
	defer d.stop(t)
	other := t.TempDir()
	writePKI(t, other) // a CA the TSA does not chain to
	tests := []struct {
		name, root string
		ok         bool
	}{
		{"trusted root", filepath.Join(s.dir, "var", "ca", "root.pem"), true},
		{"other root", filepath.Join(other, "ca.pem"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc2 := config.SectionOf[tsa.Config](cfg, tsa.SectionName)
			tc2.URLs, tc2.Roots, tc2.Retries, tc2.Timeout = []string{"http://" + d.http + "/tsa"}, []string{tc.root}, 0, 5*time.Second
			if err := tc2.Validate(); err != nil {
				t.Fatal(err)
			}
			a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
			if err := a.setupStamper(context.Background()); err != nil {
				t.Fatal(err)
			}
			if a.builtin != nil {
				t.Fatal("built-in TSA made although tsa.urls is set")
			}
			sum := sha256.Sum256([]byte("Resolución 2026/0042\n"))
			tok, err := a.tsaStamper().Timestamp(context.Background(), crypto.SHA256, sum[:])
			if tc.ok {
				if err != nil || tok.Policy.String() != tsa.DefaultPolicy || time.Since(tok.Time) > time.Minute {
					t.Fatalf("token %+v, %v", tok, err)
				}
				return
			}
			if !errors.Is(err, tsa.ErrBadReply) && !errors.Is(err, tsa.ErrBadToken) && !errors.Is(err, tsa.ErrUnavailable) {
				t.Fatalf("a token from a TSA outside tsa.roots: %v, want it refused", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}
