package transaction_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/transaction"
)

func TestConfigSection(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		yaml   string
		env    map[string]string
		check  func(*transaction.Config) bool
		errHas []string
	}{
		{"defaults", "", nil, func(c *transaction.Config) bool {
			return c.TTL == 10*time.Minute && c.OTPTTL == 5*time.Minute && c.OTPMaxTries == 3 && c.OTPMaxResends == 3 && c.SMS.Gateway == "outbox"
		}, nil},
		{"file and env", "transactions:\n  public_url: https://firma.example.es\n  ttl: 15m\n  sms:\n    gateway: http\n    url: https://sms.example.es/send\n",
			map[string]string{"FIRMA_TRANSACTIONS_OTP_MAX_TRIES": "5"}, func(c *transaction.Config) bool {
				return c.PublicURL == "https://firma.example.es" && c.TTL == 15*time.Minute && c.OTPMaxTries == 5 && c.SMS.Gateway == "http"
			}, nil},
		{"bad values", "transactions:\n  public_url: /relative\n  otp_max_tries: 0\n  sms:\n    gateway: pigeon\n", nil, nil,
			[]string{"transactions.public_url", "transactions.otp_max_tries", "transactions.sms.gateway"}},
		{"http without url", "transactions:\n  sms:\n    gateway: http\n", nil, nil, []string{"transactions.sms.url"}},
		{"attempt rule defaults", "", nil, func(c *transaction.Config) bool {
			return c.AttemptRules() == policy.DefaultAttemptRules()
		}, nil},
		{"attempt rule from file and env", "transactions:\n  otp_max_tries: 4\n  otp_failure_window: 30m\n",
			map[string]string{"FIRMA_TRANSACTIONS_OTP_LOCKOUT": "1h"}, func(c *transaction.Config) bool {
				return c.AttemptRules() == policy.AttemptRules{MaxFailures: 4, Window: 30 * time.Minute, Lockout: time.Hour}
			}, nil},
		{"archive renewal off by default", "", nil, func(c *transaction.Config) bool {
			return !c.Retimestamp.Enabled && c.Retimestamp.Interval == 24*time.Hour && c.Retimestamp.Margin == 90*24*time.Hour
		}, nil},
		{"archive renewal from file and env", "transactions:\n  retimestamp:\n    enabled: true\n    interval: 6h\n",
			map[string]string{"FIRMA_TRANSACTIONS_RETIMESTAMP_MARGIN": "720h"}, func(c *transaction.Config) bool {
				return c.Retimestamp.Enabled && c.Retimestamp.Interval == 6*time.Hour && c.Retimestamp.Margin == 720*time.Hour
			}, nil},
		{"bad archive renewal", "transactions:\n  retimestamp:\n    enabled: true\n    interval: 10s\n    margin: 5s\n", nil, nil,
			[]string{"transactions.retimestamp.interval", "transactions.retimestamp.margin"}},
		{"bad attempt rule", "transactions:\n  otp_max_tries: 11\n  otp_failure_window: 10s\n  otp_lockout: 48h\n", nil, nil,
			[]string{"transactions.otp_max_tries", "transactions.otp_failure_window", "transactions.otp_lockout"}},
		{"signing workers", "transactions:\n  sign_workers: 4\n  sign_lease: 30s\n", map[string]string{"FIRMA_TRANSACTIONS_SIGN_QUEUE": "10"},
			func(c *transaction.Config) bool {
				return c.SignWorkers == 4 && c.SignQueue == 10 && c.SignLease == 30*time.Second
			}, nil},
		{"signing worker defaults", "", nil, func(c *transaction.Config) bool {
			return c.SignWorkers == transaction.DefaultSignWorkers && c.SignQueue == transaction.DefaultSignQueue && c.SignLease == time.Minute
		}, nil},
		{"bad signing workers", "transactions:\n  sign_workers: 0\n  sign_queue: 0\n  sign_lease: 10ms\n  sign_expiry: 10s\n", nil, nil,
			[]string{"transactions.sign_workers", "transactions.sign_queue", "transactions.sign_lease", "transactions.sign_expiry"}},
		{"unknown key", "transactions:\n  otp_lenght: 8\n", nil, nil, []string{"otp_lenght"}},
		{"signature policies", "transactions:\n  signature_policies:\n    ayto:\n      oid: 1.3.6.1.4.1.99999.1\n      hash_algorithm: sha256\n" +
			"      hash: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n      uri: https://sede.example.es/politica.pdf\n" +
			"  portal_policies:\n    ABCDEF012345: ayto\n    BCDEF0123456: FirmaAGE\n", nil, func(c *transaction.Config) bool {
			ps, err := c.Policies()
			return err == nil && ps["ayto"].OID.String() == "1.3.6.1.4.1.99999.1" && c.PortalPolicies["BCDEF0123456"] == "FirmaAGE"
		}, nil},
		{"bad signature policies", "transactions:\n  signature_policies:\n    ayto:\n      oid: x.y\n      hash_algorithm: md5\n" +
			"    FirmaAGE:\n      oid: 1.2.3\n      hash_algorithm: sha1\n      hash: G7roucf600+f03r/o0bAOQ6WAs0=\n  portal_policies:\n    ABCDEF012345: otra\n", nil, nil,
			[]string{"transactions.signature_policies.ayto", "transactions.signature_policies.FirmaAGE", "transactions.portal_policies.ABCDEF012345"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			base := "auth:\n  operators:\n    - name: op\n      token_sha256: " + strings.Repeat("ab", 32) + "\n"
			if err := os.WriteFile(path, []byte(base+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == config.EnvPIN {
					return "1234"
				}
				return tc.env[k]
			}
			cfg, err := config.Load(path, getenv, nil)
			if tc.errHas != nil {
				if err == nil {
					t.Fatal("loaded")
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %s", err, s)
					}
				}
				if !errors.Is(err, config.ErrInvalid) && !strings.Contains(err.Error(), "otp_lenght") {
					t.Errorf("error %v is not ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := config.SectionOf[transaction.Config](cfg, transaction.SectionName)
			if c == nil || !tc.check(c) {
				t.Fatalf("section %+v", c)
			}
		})
	}
}
