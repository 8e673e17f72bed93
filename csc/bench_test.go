package csc_test

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
)

// BenchmarkSignHash measures signatures/signHash over HTTP with batches of
// 10 hashes (SAD lookup, all-or-nothing reservation in SQLite, signing on
// SoftHSM2, audit record), next to the signing core alone on the same
// token in the same run.
func BenchmarkSignHash(b *testing.B) {
	const batch = 10
	f := newFixture(b)
	key := f.cert2key(b)
	digests := func(n, off int) ([][]byte, []string) {
		raw := make([][]byte, n)
		b64 := make([]string, n)
		for i := range n {
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], uint64(off+i))
			h := sha256.Sum256(buf[:])
			raw[i], b64[i] = h[:], base64.StdEncoding.EncodeToString(h[:])
		}
		return raw, b64
	}

	b.Run("core", func(b *testing.B) {
		raw, _ := digests(batch, 0)
		for b.Loop() {
			if _, err := f.Core.Sign(f.Ctx, signer.Request{KeyID: key, Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: raw}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "signatures/s")
	})

	b.Run("http", func(b *testing.B) {
		// SADs of 100 hashes each, authorised before the clock runs.
		const perSAD = 100 / batch
		type job struct {
			sad    string
			hashes []string
		}
		var jobs []job
		for s := 0; s*perSAD < b.N; s++ {
			_, b64 := digests(100, 1_000_000+s*100)
			sad := f.authorize(b, f.key, b64)
			for j := range perSAD {
				jobs = append(jobs, job{sad, b64[j*batch : (j+1)*batch]})
			}
		}
		b.ResetTimer()
		for i := range b.N {
			a := f.call(b, f.key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": jobs[i].sad, "hashes": jobs[i].hashes,
				"hashAlgorithmOID": oidSHA256, "signAlgo": "1.2.840.10045.4.3.2"})
			if a.status != http.StatusOK {
				b.Fatalf("signHash: %s", a.raw)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "signatures/s")
	})
}
