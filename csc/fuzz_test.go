package csc

import (
	"crypto"
	"encoding/base64"
	"testing"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
)

// FuzzResolveSignAlgo: any signAlgo and parameters a client sends give a
// scheme or an invalid_request, never a panic.
func FuzzResolveSignAlgo(f *testing.F) {
	f.Add(oidRSAPSS, base64.StdEncoding.EncodeToString([]byte{0x30, 0x00}))
	f.Add(oidECDSASHA256, "")
	f.Add(oidRSA, "MAA=")
	f.Add("1.2.3", "!!")
	f.Fuzz(func(t *testing.T, oid, params string) {
		for _, kt := range keystore.Types {
			s, err := resolveSignAlgo(kt, oid, params, crypto.SHA256)
			if err == nil && s == "" {
				t.Fatalf("%s %s: no scheme and no error", kt, oid)
			}
			if err != nil {
				if e := errs.As(err); e == nil || e.Code != CodeInvalidRequest || e.Kind != errs.Invalid {
					t.Fatalf("%s %s: %v", kt, oid, err)
				}
			}
		}
	})
}

// FuzzDecodeHashes: hashes from a client decode to the right length or
// are refused.
func FuzzDecodeHashes(f *testing.F) {
	f.Add("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "")
	f.Add("", "AAAA")
	f.Fuzz(func(t *testing.T, a, b string) {
		out, err := decodeHashes([]string{a, b}, crypto.SHA256)
		if err != nil {
			return
		}
		for _, h := range out {
			if len(h) != 32 {
				t.Fatalf("hash of %d bytes accepted", len(h))
			}
		}
	})
}
