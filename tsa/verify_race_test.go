package tsa

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
)

// TestVerifyTokenConcurrent verifies one token from many goroutines at
// once, as firmad does (verify requests, CAdES signatures, checkpoints):
// each call gets the right answer, and under -race (make test runs every
// package with it) no data race is reported. digitorus/pkcs7's BER converter
// counts its nesting in a package variable; before internal/cmsparse
// serialised the parses this test failed under -race. Cost: 8 × 25
// verifications, well under a second (a few seconds with -race).
func TestVerifyTokenConcurrent(t *testing.T) {
	der, roots := fuzzFixture(t)
	other := sha256.Sum256([]byte("y"))
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errc := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if (w+i)%2 == 0 {
					if _, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: fuzzDigest[:]}); err != nil {
						errc <- err
					}
				} else if _, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: other[:]}); !errors.Is(err, ErrImprintMismatch) {
					errc <- errors.Join(errors.New("another digest not refused"), err)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
