// Package cmsparse is the one way the module parses CMS (PKCS #7) with
// github.com/digitorus/pkcs7 and RFC 3161 tokens with
// github.com/digitorus/timestamp: pkcs7.Parse always runs its BER-to-DER
// converter, which counts its nesting in a package-level variable
// (encodeIndent in ber.go) with no synchronisation, so two parses at once
// are a data race. No newer version of the module is served; the fix is
// serialising every parse here, with one mutex. timestamp.Parse calls
// pkcs7.Parse, so it takes the same mutex. A parse of a token or a
// detached signature takes tens of microseconds, so the lock costs little
// next to the signature checks around it.
package cmsparse

import (
	"sync"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
)

var mu sync.Mutex

// PKCS7 is pkcs7.Parse, one at a time. A panic in the parser is passed
// on with the lock released.
func PKCS7(der []byte) (*pkcs7.PKCS7, error) {
	mu.Lock()
	defer mu.Unlock()
	return pkcs7.Parse(der)
}

// Timestamp is timestamp.Parse (which checks the token's CMS signature
// when it carries certificates), one at a time with PKCS7.
func Timestamp(der []byte) (*timestamp.Timestamp, error) {
	mu.Lock()
	defer mu.Unlock()
	return timestamp.Parse(der)
}
