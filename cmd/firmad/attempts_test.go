package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/store/sqlite"
)

// TestAttemptRules: the one wrong-code rule comes from the transactions
// section; the deprecated csc.otp_lockout still overrides its lockout.
func TestAttemptRules(t *testing.T) {
	base := "auth:\n  operators:\n    - name: op\n      token_sha256: " + strings.Repeat("ab", 32) + "\n"
	for _, tc := range []struct {
		name       string
		yaml       string
		env        map[string]string
		want       policy.AttemptRules
		deprecated bool
	}{
		{"defaults", "", nil, policy.DefaultAttemptRules(), false},
		{"transactions section", "transactions:\n  otp_max_tries: 5\n  otp_failure_window: 1h\n  otp_lockout: 30m\n", nil,
			policy.AttemptRules{MaxFailures: 5, Window: time.Hour, Lockout: 30 * time.Minute}, false},
		{"env override", "", map[string]string{"FIRMA_TRANSACTIONS_OTP_LOCKOUT": "2h"},
			policy.AttemptRules{MaxFailures: 3, Window: 15 * time.Minute, Lockout: 2 * time.Hour}, false},
		{"deprecated csc lockout", "transactions:\n  otp_lockout: 30m\ncsc:\n  otp_lockout: 45m\n", nil,
			policy.AttemptRules{MaxFailures: 3, Window: 15 * time.Minute, Lockout: 45 * time.Minute}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "firmad.yaml")
			if err := os.WriteFile(path, []byte(base+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadSections(t, path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			got, deprecated := attemptRules(cfg)
			if got != tc.want || deprecated != tc.deprecated {
				t.Fatalf("rules %+v deprecated %t, want %+v %t", got, deprecated, tc.want, tc.deprecated)
			}
		})
	}
}

// TestAttemptSweep runs the sweeper as firmad does, on a real SQLite
// store: dead counters go (a wrong code a whole window old, a sign-out
// older than a /me session), live ones stay, and the metric counts what
// went. The window is the longest of the rules'.
func TestAttemptSweep(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Store.AttemptSweepInterval = 20 * time.Millisecond
	window := attemptSweepWindow(cfg)
	if window != time.Hour { // the password windows, longer than the OTP one and /me
		t.Fatalf("sweep window %s, want the password windows' 1h", window)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now()
	cells := map[string]time.Time{
		policy.OTPScope("10000001S"):      now.Add(-window - time.Minute), // dead
		"me-signed-out:10000001S":         now.Add(-2 * window),           // dead
		policy.PasswordScope("10000002Q"): now.Add(-30 * time.Minute),     // live: within the password window
	}
	for scope, last := range cells {
		if err := db.UpdateAttempts(ctx, scope, func(int, time.Time, time.Time) (int, time.Time, time.Time) {
			return 1, last, time.Time{}
		}); err != nil {
			t.Fatal(err)
		}
	}
	a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), store: db}
	if err := a.setupAttemptSweep(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.close()
	swept := func() float64 {
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "firma_store_attempt_rows_swept_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	deadline := time.Now().Add(10 * time.Second)
	for swept() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("swept %v rows in 10 s, want 2", swept())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for scope := range cells {
		n, _, _, err := db.Attempts(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		if live := scope == policy.PasswordScope("10000002Q"); (n != 0) != live {
			t.Errorf("%s: %d failures kept, live %v", scope, n, live)
		}
	}
	if got := swept(); got != 2 {
		t.Errorf("metric %v, want 2", got)
	}
}
