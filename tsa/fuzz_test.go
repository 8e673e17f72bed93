package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/firma-cloud/firma/keystore"
)

// FuzzRespond feeds the built-in TSA arbitrary queries: it must answer
// every one with a well-formed reply (granted or rejected), never panic
// and never fail on its side.
func FuzzRespond(f *testing.F) {
	e := newEnv(f)
	p := e.newPKI("Fuzz")
	srv := e.tsa(p, keystore.ECP256, nil)
	f.Add(sha256Query(f, []byte("x"), true))
	f.Add(sha256Query(f, []byte("y"), false))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, q []byte) {
		reply, fail, err := srv.Respond(context.Background(), q)
		if err != nil {
			t.Fatalf("system failure on outside input: %v", err)
		}
		der, perr := ParseReply(reply)
		if fail >= 0 {
			var re *RejectionError
			if !errors.As(perr, &re) || re.FailInfo != fail {
				t.Fatalf("refusal %v answered with %v", fail, perr)
			}
			return
		}
		if perr != nil || len(der) == 0 {
			t.Fatalf("granted reply does not parse: %v", perr)
		}
	})
}

// FuzzVerifyToken feeds arbitrary tokens to the verifier: it must refuse
// them with ErrBadToken, never panic.
func FuzzVerifyToken(f *testing.F) {
	e := newEnv(f)
	p := e.newPKI("Fuzz")
	srv := e.tsa(p, keystore.ECP256, nil)
	d := sha256.Sum256([]byte("x"))
	tok, err := srv.Timestamp(context.Background(), crypto.SHA256, d[:])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.DER)
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	roots := p.roots()
	f.Fuzz(func(t *testing.T, der []byte) {
		got, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: d[:]})
		if err == nil {
			if !bytes.Equal(der, tok.DER) && !bytes.Equal(got.Digest, d[:]) {
				t.Fatalf("accepted a token for another digest")
			}
			return
		}
		if !errors.Is(err, ErrBadToken) {
			t.Fatalf("refusal not an ErrBadToken: %v", err)
		}
	})
}
