package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/tsa"
)

// loadSections loads file through config.Load, as firmad does, with env.
func loadSections(t *testing.T, file string, env map[string]string) (*config.Config, error) {
	t.Helper()
	getenv := func(k string) string {
		if k == config.EnvPIN {
			return "1234"
		}
		return env[k]
	}
	return config.Load(file, getenv, nil)
}

// The ca, registry, audit and tsa sections are read from firmad.yaml,
// with FIRMA_<SECTION>_<FIELD> overrides.
func TestSectionsLoad(t *testing.T) {
	cfg, err := loadSections(t, "testdata/sections.yaml", map[string]string{
		"FIRMA_CA_BASE_URL": "https://proxy.example.es/", "FIRMA_TSA_ACCURACY": "250ms", "FIRMA_AUDIT_ORIGIN": "other.example/audit"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://proxy.example.es/" || c.Organization != "Servicio de Firma" || c.CitizenKeyType != "ec-p384" ||
		c.CRLInterval != 30*time.Minute || len(c.Policies) != 1 {
		t.Errorf("ca section: %+v", c)
	}
	r := registrySection(cfg)
	if r.VideoHours != "Mon-Sat 08:00-20:00" || r.MaxPasswordFailures != 3 || r.SMSCodeTTL != 5*time.Minute || len(r.Staff) != 1 {
		t.Errorf("registry section: %+v", r)
	}
	if _, err := r.Options(); err != nil {
		t.Errorf("registry options: %v", err)
	}
	a := auditSection(cfg)
	if a.Origin != "other.example/audit" || a.CheckpointInterval != 5*time.Minute || a.Notify != "none" {
		t.Errorf("audit section: %+v", a)
	}
	ts := tsaSection(cfg)
	if oid, err := ts.PolicyOID(); err != nil || oid.String() != "1.3.6.1.4.1.99999.2.1" {
		t.Errorf("tsa policy %v, %v", oid, err)
	}
	if ts.Accuracy != 250*time.Millisecond || ts.KeyType != "rsa-3072" || ts.SerialBlock != 10 || ts.KeyUsagePeriod != 2160*time.Hour ||
		!ts.RequireSyncedClock || ts.External() || ts.AuditInterval != 5*time.Minute {
		t.Errorf("tsa section: %+v", ts)
	}
	if cfg.Listen.GRPCMaxMessageBytes != 16<<20 {
		t.Errorf("listen.grpc_max_message_bytes = %d", cfg.Listen.GRPCMaxMessageBytes)
	}

	// Without the sections, the defaults; ca.base_url follows listen.http.
	def := config.Default()
	if c, err := ca.FromConfig(def); err != nil || c.BaseURL != "http://"+def.Listen.HTTP {
		t.Errorf("default ca base URL %q, %v", c.BaseURL, err)
	}
	if got := registrySection(def); got.VideoHours != registry.DefaultConfig().VideoHours {
		t.Errorf("default registry section %+v", got)
	}
	if got := auditSection(def); got.Origin != audit.DefaultConfig().Origin {
		t.Errorf("default audit section %+v", got)
	}
	if got := tsaSection(def); got.Policy != tsa.DefaultPolicy || got.External() || got.AuditInterval != tsa.DefaultAuditInterval {
		t.Errorf("default tsa section %+v", got)
	}
}

// Bad settings are refused at load, each error naming its field in full.
func TestSectionsValidate(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("testdata/sections.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{name: "ca mode", yaml: "ca:\n  mode: outside\n", want: []string{"ca.mode", "outside"}},
		{name: "ca base url", env: map[string]string{"FIRMA_CA_BASE_URL": "ftp://x"}, want: []string{"ca.base_url"}},
		{name: "ca key type", yaml: "ca:\n  root_key_type: dsa\n", want: []string{"ca.root_key_type", "dsa"}},
		{name: "ca unknown key", yaml: "ca:\n  organisation: x\n", want: []string{"unknown key organisation"}},
		{name: "registry hours", yaml: "registry:\n  video_hours: whenever\n", want: []string{"registry.video_hours"}},
		{name: "registry role", yaml: "registry:\n  staff:\n    - {name: a, role: admin, token_sha256: x}\n", want: []string{"registry.staff[0].role"}},
		{name: "audit origin", env: map[string]string{"FIRMA_AUDIT_ORIGIN": "has space"}, want: []string{"audit.origin"}},
		{name: "audit notify", env: map[string]string{"FIRMA_AUDIT_NOTIFY": "pigeon"}, want: []string{"audit.notify", "pigeon"}},
		{name: "tsa policy", env: map[string]string{"FIRMA_TSA_POLICY": "best"}, want: []string{"tsa.policy"}},
		{name: "tsa serial block", env: map[string]string{"FIRMA_TSA_SERIAL_BLOCK": "0"}, want: []string{"tsa.serial_block"}},
		{name: "tsa key type", env: map[string]string{"FIRMA_TSA_KEY_TYPE": "ed25519"}, want: []string{"tsa.key_type"}},
		{name: "tsa audit interval", env: map[string]string{"FIRMA_TSA_AUDIT_INTERVAL": "500ms"}, want: []string{"tsa.audit_interval", "1s to 24h"}},
		{name: "tsa urls without roots", yaml: "tsa:\n  urls: [https://tsa.example]\n", want: []string{"tsa.roots", "urls"}},
		{name: "tsa bad url", yaml: "tsa:\n  urls: [tsa.example]\n  roots: [" + root + "]\n", want: []string{"tsa.urls[0]", "tsa.roots[0]", "no PEM"}},
		{name: "tsa breaker cooldown", yaml: "tsa:\n  urls: [https://tsa.example]\n  roots: [" + root + "]\n  breaker_cooldown: 0s\n",
			want: []string{"tsa.breaker_cooldown", "must be > 0"}},
		{name: "tsa roots without urls", yaml: "tsa:\n  roots: [" + root + "]\n", want: []string{"tsa.roots", "built-in"}},
		{name: "grpc message size", env: map[string]string{"FIRMA_LISTEN_GRPC_MAX_MESSAGE_BYTES": "1024"}, want: []string{"listen.grpc_max_message_bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			// The test's sections replace the base file's.
			body := string(base)
			for _, sec := range []string{"ca", "registry", "audit", "tsa"} {
				if strings.HasPrefix(tc.yaml, sec+":") {
					body = dropSection(body, sec)
				}
			}
			if err := os.WriteFile(file, []byte(body+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadSections(t, file, tc.env)
			if err == nil {
				t.Fatalf("loaded; want an error naming %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// dropSection removes the top-level section sec from a YAML document.
func dropSection(doc, sec string) string {
	var out []string
	skip := false
	for _, line := range strings.SplitAfter(doc, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '#' {
			skip = strings.HasPrefix(line, sec+":")
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// The side files of earlier versions are gone: their variables change
// nothing.
func TestSideFileVariablesGone(t *testing.T) {
	cfg, err := loadSections(t, "testdata/sections.yaml", map[string]string{
		"FIRMA_CA_CONFIG": "/nonexistent/ca.yaml", "FIRMA_REGISTRY_CONFIG": "/nonexistent/registry.yaml", "FIRMA_AUDIT_CONFIG": "/nonexistent/audit.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ca.FromConfig(cfg); err != nil || c.BaseURL != "https://firma.example.es" {
		t.Errorf("ca section %+v, %v", c, err)
	}
}
