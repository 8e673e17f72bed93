package api_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/internal/cputime"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
)

// BenchmarkSignDigests compares the signing core called in process with
// the same core behind SigningService over an in-memory gRPC connection,
// so the cost the API layer adds (auth, metrics, protobuf, and the
// key.activated and key.used records of package signing) shows as the
// difference. The full comparison against raw PKCS#11 is in bench/.
func BenchmarkSignDigests(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			// The default configuration: no ECDSA self-check.
			s := newServerCore(b, signer.Config{})
			k := s.generate(b, "12345678Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN)
			digests := make([][]byte, batch)
			for i := range digests {
				digests[i] = make([]byte, 32)
				rand.Read(digests[i])
			}
			core := s.core
			b.Run("core", func(b *testing.B) {
				// Several calls in flight per core, as a loaded server sees:
				// one call's round trip then never leaves a session idle.
				b.SetParallelism(4)
				cpu0 := cputime.Process()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := core.Sign(context.Background(), signer.Request{KeyID: k.GetId(), Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: digests}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRates(b, batch, cpu0)
			})
			b.Run("grpc", func(b *testing.B) {
				req := &firmav1.SignDigestsRequest{KeyId: k.GetId(), Scheme: firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA, Digests: digests}
				// Several calls in flight per core, as a loaded server sees:
				// one call's round trip then never leaves a session idle.
				b.SetParallelism(4)
				cpu0 := cputime.Process()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.sign.SignDigests(context.Background(), req); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRates(b, batch, cpu0)
			})
		})
	}
}

func reportRates(b *testing.B, batch int, cpu0 time.Duration) {
	sigs := float64(b.N * batch)
	b.ReportMetric(sigs/b.Elapsed().Seconds(), "sigs/s")
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/sigs, "cpu-us/sig")
}
