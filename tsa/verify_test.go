package tsa

import (
	"context"
	"crypto"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/firma-cloud/firma/keystore"
)

// TestVerifyToken checks VerifyToken on its own, as a CAdES verifier uses
// it on an embedded token.
func TestVerifyToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Other")
	srv := e.tsa(p, keystore.ECP256, nil)
	sigValue := []byte("the signature value a CAdES signer timestamps")
	d512 := sha512.Sum512(sigValue)
	tok512, err := TokenDER(srv)(ctx, crypto.SHA512, d512[:])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
		opts VerifyOptions
		want error
	}{
		{"digest", tok512, VerifyOptions{Roots: p.roots(), Hash: crypto.SHA512, Digest: d512[:]}, nil},
		{"data under the token's hash", tok512, VerifyOptions{Roots: p.roots(), Data: sigValue}, nil},
		{"other data", tok512, VerifyOptions{Roots: p.roots(), Data: []byte("another signature value")}, ErrImprintMismatch},
		{"other hash", tok512, VerifyOptions{Roots: p.roots(), Hash: crypto.SHA256, Digest: d512[:32]}, ErrImprintMismatch},
		{"policy accepted", tok512, VerifyOptions{Roots: p.roots(), Data: sigValue, Policies: []asn1.ObjectIdentifier{testPolicy}}, nil},
		{"policy not accepted", tok512, VerifyOptions{Roots: p.roots(), Data: sigValue, Policies: []asn1.ObjectIdentifier{{1, 2, 3}}}, ErrPolicyMismatch},
		{"other root", tok512, VerifyOptions{Roots: other.roots(), Data: sigValue}, ErrUntrusted},
		{"truncated", tok512[:len(tok512)/2], VerifyOptions{Roots: p.roots(), Data: sigValue}, ErrMalformed},
		{"not a token", []byte{0x30, 0x82}, VerifyOptions{Roots: p.roots(), Data: sigValue}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := VerifyToken(tc.der, tc.opts)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if tok.Hash != crypto.SHA512 || string(tok.Digest) != string(d512[:]) || tok.Cert.Equal(srv.Certificate()) == false {
					t.Fatalf("token %+v", tok)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := VerifyToken(tok512, VerifyOptions{Hash: crypto.SHA512, Digest: d512[:]}); err == nil {
		t.Fatal("verified without roots")
	}
}
