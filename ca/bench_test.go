package ca_test

import (
	"fmt"
	"testing"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"golang.org/x/crypto/ocsp"
)

// BenchmarkRespondOCSP measures OCSP answers: "uncached" signs every
// response in the HSM (the cost of a flood of distinct queries),
// "uncached-audited" also commits a key.used audit record per response,
// "cached" reuses the signed response within the cache TTL.
func BenchmarkRespondOCSP(b *testing.B) {
	for _, bc := range []struct {
		name    string
		ttl     int // -1 disables the cache
		audited bool
	}{{"uncached", -1, false}, {"uncached-audited", -1, true}, {"cached", 0, false}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, func(c *ca.Config) {
				if bc.ttl < 0 {
					c.OCSPCacheTTL = -1
				}
			})
			if bc.audited {
				e.audited()
			}
			e.init()
			e.advanced("12345678Z", "Juan", "Español")
			c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
			if err != nil {
				b.Fatal(err)
			}
			req, err := ocsp.CreateRequest(c.Cert, e.ca.Issuing(), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := e.ca.RespondOCSP(e.ctx, req)
					if err != nil || res.Status != "good" {
						b.Errorf("ocsp: %v %s", err, res.Status)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
		})
	}
}

// BenchmarkIssue measures issuing a citizen certificate: key generation
// in the HSM, the issuing CA's signature and the store write. Renew is
// used so every iteration makes a new key and certificate.
func BenchmarkIssue(b *testing.B) {
	e := newEnv(b, nil)
	e.init()
	const citizens = 8
	ids := make([]string, citizens)
	letters := "TRWAGMYFPDXBNJZSQVHLCKE"
	for i := range ids {
		n := 10000000 + i
		ids[i] = fmt.Sprintf("%08d%c", n, letters[n%23])
		e.advanced(ids[i], "Nombre", "Apellido")
		if _, err := e.ca.EnsureCertificate(e.ctx, ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := e.ca.Renew(e.ctx, ids[i%citizens]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkIssueBaseline is the raw cost under BenchmarkIssue, measured in
// the same run: generating a key in the HSM and destroying one, which a
// renewal does once each, with no certificate or store work of the CA.
func BenchmarkIssueBaseline(b *testing.B) {
	e := newEnv(b, nil)
	b.ResetTimer()
	for b.Loop() {
		k, err := e.ks.Generate(e.ctx, "12345678Z", keystore.ECP256)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.ks.Destroy(e.ctx, k.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
