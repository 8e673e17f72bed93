package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
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

// TestExternalTSAReadiness: with tsa.urls set, /readyz's tsa check fails
// once every external TSA is known unreachable, without asking any itself.
func TestExternalTSAReadiness(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + lis.Addr().String() + "/tsa"
	lis.Close() // nothing listens there now: connections are refused
	cfg := config.Default()
	tc := config.SectionOf[tsa.Config](cfg, tsa.SectionName)
	dir := t.TempDir()
	writePKI(t, dir) // a root for the section to load; no token gets that far
	tc.URLs, tc.Roots, tc.Retries, tc.Timeout = []string{down}, []string{filepath.Join(dir, "ca.pem")}, 0, 2*time.Second
	a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	if err := a.setupStamper(context.Background()); err != nil {
		t.Fatal(err)
	}
	check := func() error {
		for _, c := range a.checks {
			if c.name == "tsa" {
				return c.fn(context.Background())
			}
		}
		t.Fatal("no tsa readiness check with tsa.urls set")
		return nil
	}
	if err := check(); err != nil {
		t.Fatalf("ready before any exchange: %v", err)
	}
	sum := sha256.Sum256([]byte("x"))
	if _, err := a.tsaStamper().Timestamp(context.Background(), crypto.SHA256, sum[:]); !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("timestamp from a TSA that refuses connections: %v", err)
	}
	if err := check(); !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("readiness with the only TSA unreachable: %v, want it failing", err)
	}
}
