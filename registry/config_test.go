package registry_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/registry"
)

func TestConfigOptions(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	ca := newPKI(t, "Trusted")
	caFile := filepath.Join(ca.dir, "ca.pem")
	tests := []struct {
		name string
		mod  func(*registry.Config)
		want string // error substring; "" for valid
	}{
		{name: "defaults"},
		{name: "trusted CA", mod: func(c *registry.Config) { c.TrustedCAs = []string{caFile} }},
		{name: "staff", mod: func(c *registry.Config) {
			c.Staff = []registry.StaffToken{{Name: "ana", Role: "registrar", TokenSHA256: strings.Repeat("ab", 32)}}
		}},
		{name: "custom hours", mod: func(c *registry.Config) { c.VideoHours, c.Zone = "Mon-Sat 08:00-20:00", "Atlantic/Canary" }},
		{name: "bad hours", mod: func(c *registry.Config) { c.VideoHours = "Mon-Fri 9-14" }, want: "registry.video_hours"},
		{name: "bad zone", mod: func(c *registry.Config) { c.Zone = "Europe/Atlantis" }, want: "registry.video_hours"},
		{name: "missing CA file", mod: func(c *registry.Config) { c.TrustedCAs = []string{filepath.Join(dir, "nope.pem")} }, want: "registry.trusted_cas[0]"},
		{name: "CA file not PEM", mod: func(c *registry.Config) { c.TrustedCAs = []string{notPEM} }, want: "holds no PEM certificate"},
		{name: "staff without name", mod: func(c *registry.Config) { c.Staff = []registry.StaffToken{{Role: "registrar"}} }, want: "registry.staff[0].name"},
		{name: "staff as administrator", mod: func(c *registry.Config) {
			c.Staff = []registry.StaffToken{{Name: "x", Role: "administrator"}}
		}, want: "registry.staff[0].role"},
		{name: "weak argon2", mod: func(c *registry.Config) { c.Argon2Memory = 1024 }, want: "registry.argon2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := registry.DefaultConfig()
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			opt, err := cfg.Options()
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opt.Hours == nil || opt.MaxFailures != 5 || opt.SMSCodeTTL != 10*time.Minute || opt.Argon2 != registry.DefaultArgon2 {
				t.Fatalf("options %+v", opt)
			}
			if len(cfg.TrustedCAs) > 0 && opt.TrustedCAs == nil {
				t.Fatal("trusted CAs not loaded")
			}
		})
	}
}
