package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
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
