package ca_test

import (
	"os"
	"strings"
	"testing"

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
