package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegistrySettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, want string
		check            func(t *testing.T, hours string, failures int, ttl time.Duration)
	}{
		{name: "no file: defaults", check: func(t *testing.T, hours string, failures int, ttl time.Duration) {
			if hours != "Mon-Fri 09:00-14:00,15:00-18:00" || failures != 5 || ttl != 10*time.Minute {
				t.Fatalf("defaults: %q %d %v", hours, failures, ttl)
			}
		}},
		{name: "overrides", file: write("ok.yaml", "video_hours: Mon-Sat 08:00-20:00\nmax_password_failures: 3\nsms_code_ttl: 5m\nstaff:\n  - name: ana\n    role: registrar\n    token_sha256: "+strings.Repeat("0f", 32)+"\n"),
			check: func(t *testing.T, hours string, failures int, ttl time.Duration) {
				if hours != "Mon-Sat 08:00-20:00" || failures != 3 || ttl != 5*time.Minute {
					t.Fatalf("overrides: %q %d %v", hours, failures, ttl)
				}
			}},
		{name: "unknown key", file: write("bad.yaml", "video_hourz: Mon 09:00-10:00\n"), want: "video_hourz"},
		{name: "missing file", file: filepath.Join(dir, "none.yaml"), want: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := registrySettings(func(k string) string {
				if k == EnvRegistryConfig {
					return tt.file
				}
				return ""
			})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Options(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.VideoHours, cfg.MaxPasswordFailures, cfg.SMSCodeTTL)
		})
	}
}
