package ca_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/ca"
)

func TestDefaultBaseURL(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ listen, want string }{
		{"127.0.0.1:7780", "http://127.0.0.1:7780"},
		{"firma.example.es:80", "http://firma.example.es:80"},
		{"0.0.0.0:7780", "http://" + host + ":7780"},
		{"[::]:7780", "http://" + host + ":7780"},
		{":7780", "http://" + host + ":7780"},
		{"[::1]:7780", "http://[::1]:7780"},
	}
	for _, tc := range tests {
		if got := ca.DefaultBaseURL(tc.listen); got != tc.want {
			t.Errorf("DefaultBaseURL(%q) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	tests := []struct {
		name string
		cfg  ca.Config
		want string
	}{
		{"mode", ca.Config{Mode: "hybrid"}, "mode"},
		{"base url", ca.Config{BaseURL: "ftp://x"}, "base URL"},
		{"relative base url", ca.Config{BaseURL: "/crl"}, "base URL"},
		{"country", ca.Config{Country: "Spain"}, "country"},
		{"key type", ca.Config{CitizenKeyType: "ed25519"}, "ed25519"},
		{"policy", ca.Config{Policies: []string{"not.an.oid"}}, "policy"},
		{"crl interval", ca.Config{CRLInterval: 48 * 3600e9, CRLValidity: 24 * 3600e9}, "crl interval"},
		{"external issuers file", ca.Config{ExternalIssuersFile: "/nonexistent/ca.pem"}, "external issuers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			err := cfg.LoadExternalIssuers()
			if err == nil {
				_, err = ca.New(cfg, nil, nil, nil, nil, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := ca.LoadConfig("testdata/ca.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://firma.example.es" || c.RootName != "Firma Raíz 2026" || c.CitizenKeyType != "ec-p384" ||
		c.CitizenValidity != 17520*time.Hour || c.CRLInterval != 30*time.Minute || len(c.Policies) != 2 {
		t.Errorf("loaded %+v", c)
	}
	tests := []struct{ path, want string }{
		{"testdata/ca-typo.yaml", "organisation"},
		{"testdata/missing.yaml", "no such file"},
	}
	for _, tc := range tests {
		if _, err := ca.LoadConfig(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadConfig(%s) = %v, want an error naming %q", tc.path, err, tc.want)
		}
	}
}

// The names configured go into the CA certificates.
func TestConfiguredNames(t *testing.T) {
	e := newEnv(t, func(c *ca.Config) {
		loaded, err := ca.LoadConfig("testdata/ca.yaml")
		if err != nil {
			t.Fatal(err)
		}
		loaded.BaseURL = c.BaseURL
		*c = loaded
	})
	res := e.init()
	root, _ := e.chain()
	mustContain(t, "root", openssl(t, e.dir, "x509", "-in", root, "-noout", "-subject", "-nameopt", "RFC2253,-esc_msb"),
		"CN=Firma Raíz 2026", "organizationIdentifier=VATES-Q0000000J", "O=Servicio de Firma en la Nube", "C=ES")
	if res.Issuing.Subject.CommonName != "Firma Ciudadanos 1" {
		t.Errorf("issuing CN %q", res.Issuing.Subject.CommonName)
	}
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := e.ks.Key(e.ctx, c.KeyID); k.Type != "ec-p384" {
		t.Errorf("citizen key type %s, want ec-p384", k.Type)
	}
}
