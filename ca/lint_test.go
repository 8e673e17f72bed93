package ca_test

import (
	"sort"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/firma-cloud/firma/ca"
)

// TestProfilesPassZlint runs zlint, the certificate linter public CAs use,
// over every kind of certificate the CA makes, with the RFC 5280/5480/6960,
// ETSI and community lints (the CA/Browser Forum ones are for TLS and
// S/MIME, which these certificates are not). Errors and warnings fail.
func TestProfilesPassZlint(t *testing.T) {
	registry, err := lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.RFC5280, lint.RFC5480, lint.RFC6960, lint.EtsiEsi, lint.Community},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		qc   bool
	}{
		{"plain", false},
		{"qcstatements", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *ca.Config) { c.QCStatements = tc.qc })
			res := e.init()
			e.advanced("12345678Z", "Juan", "Español Martínez")
			c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
			if err != nil {
				t.Fatal(err)
			}
			for _, cert := range []struct {
				name string
				der  []byte
			}{{"root", res.Root.Raw}, {"issuing", res.Issuing.Raw}, {"ocsp", res.OCSP.Raw}, {"citizen", c.DER}} {
				zc, err := zx509.ParseCertificate(cert.der)
				if err != nil {
					t.Fatalf("%s: zcrypto cannot parse: %v", cert.name, err)
				}
				rs := zlint.LintCertificateEx(zc, registry)
				var bad []string
				passed := 0
				for name, r := range rs.Results {
					switch {
					case r.Status >= lint.Warn:
						bad = append(bad, name+": "+r.Status.String()+" "+r.Details)
					case r.Status == lint.Pass:
						passed++
					}
				}
				t.Logf("%s: %d lints passed", cert.name, passed)
				// A linter that found nothing applicable would pass anything.
				if passed < 20 {
					t.Errorf("%s: only %d lints applied", cert.name, passed)
				}
				sort.Strings(bad)
				for _, b := range bad {
					t.Errorf("%s: %s", cert.name, b)
				}
			}
		})
	}
}
