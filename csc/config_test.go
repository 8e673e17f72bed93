package csc

import (
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"short sad", func(c *Config) { c.SADTTL = time.Second }, "sad_ttl"},
		{"long sad", func(c *Config) { c.SADTTL = 2 * time.Hour }, "sad_ttl"},
		{"short lockout", func(c *Config) { c.OTPLockout = time.Second }, "otp_lockout"},
		{"long lockout", func(c *Config) { c.OTPLockout = 48 * time.Hour }, "otp_lockout"},
		{"deprecated lockout still set", func(c *Config) { c.OTPLockout = 30 * time.Minute }, ""},
		{"no signatures", func(c *Config) { c.MaxSignatures = 0 }, "max_signatures"},
		{"too many signatures", func(c *Config) { c.MaxSignatures = 5000 }, "max_signatures"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mut(&cfg)
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
