package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
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

// The FuzzVerifyToken fixture: a real token of the built-in TSA (HSM
// key, HSM-keyed root and issuing CA) over fuzzDigest, and its root. It is
// a file so that fuzz workers start without a SoftHSM2 token: building one
// per worker is what kept the target from fuzzing. The chain is checked at
// the token's own time, so the fixture does not expire; regenerate it with
// go test ./tsa/ -run '^TestFuzzTokenFixture$' -update-fuzz-token
var (
	fuzzTokenFile = filepath.Join("testdata", "fuzz-token.der")
	fuzzRootFile  = filepath.Join("testdata", "fuzz-root.pem")
	fuzzDigest    = sha256.Sum256([]byte("x"))
	updateFixture = flag.Bool("update-fuzz-token", false, "rewrite the FuzzVerifyToken fixture from a fresh SoftHSM2-backed TSA")
)

// TestFuzzTokenFixture keeps the fixture honest: it must verify for
// fuzzDigest and be refused for any other. With -update-fuzz-token it is
// first rewritten from a real TSA.
func TestFuzzTokenFixture(t *testing.T) {
	if *updateFixture {
		e := newEnv(t)
		p := e.newPKI("Fuzz")
		srv := e.tsa(p, keystore.ECP256, nil)
		tok, err := srv.Timestamp(context.Background(), crypto.SHA256, fuzzDigest[:])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fuzzTokenFile, tok.DER, 0o644); err != nil {
			t.Fatal(err)
		}
		root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.Raw})
		if err := os.WriteFile(fuzzRootFile, root, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	der, roots := fuzzFixture(t)
	if _, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: fuzzDigest[:]}); err != nil {
		t.Fatalf("fixture does not verify: %v", err)
	}
	other := sha256.Sum256([]byte("y"))
	if _, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: other[:]}); !errors.Is(err, ErrImprintMismatch) {
		t.Fatalf("fixture for another digest: got %v, want ErrImprintMismatch", err)
	}
}

func fuzzFixture(t testing.TB) ([]byte, *x509.CertPool) {
	t.Helper()
	der, err := os.ReadFile(fuzzTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	pemRoot, err := os.ReadFile(fuzzRootFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemRoot) {
		t.Fatalf("%s holds no certificate", fuzzRootFile)
	}
	return der, roots
}

// FuzzVerifyToken feeds the verifier the real token with a splice (cut
// bytes at a position, insert patch), or, with at == rawInput, patch
// alone: every refusal wraps ErrBadToken, nothing panics, and whatever is
// accepted is over the digest asked for and is refused when asked for
// another digest. The body is pure (no HSM, no I/O).
//
// The input is a splice, not the 1.5 KB token itself, because almost
// every mutation of the token reaches new code, and the fuzzer then
// minimises that 1.5 KB input (quadratic in its length, up to
// -fuzzminimizetime, 60 s by default) before fuzzing on: that, not the
// body, is what held the target to a few executions a minute. A small
// patch minimises in milliseconds.
func FuzzVerifyToken(f *testing.F) {
	tok, roots := fuzzFixture(f)
	f.Add(uint16(0), uint16(0), []byte(nil))                           // the token itself
	f.Add(uint16(rawInput), uint16(0), []byte{0x30, 0x80, 0x00, 0x00}) // raw bytes
	f.Add(uint16(len(tok)-40), uint16(1), []byte{0x00})                // inside the signature
	f.Add(uint16(100), uint16(4), []byte{0x30, 0x82})                  // inside TSTInfo
	other := sha256.Sum256([]byte("y"))
	f.Fuzz(func(t *testing.T, at, cut uint16, patch []byte) {
		der := patch
		if at != rawInput {
			a := int(at) % (len(tok) + 1)
			c := min(int(cut), len(tok)-a)
			der = append(append(append(make([]byte, 0, len(tok)+len(patch)), tok[:a]...), patch...), tok[a+c:]...)
		}
		got, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: fuzzDigest[:]})
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("refusal not an ErrBadToken: %v", err)
			}
			return
		}
		if got.Hash != crypto.SHA256 || !bytes.Equal(got.Digest, fuzzDigest[:]) {
			t.Fatalf("accepted a token over %v %x, asked SHA-256 %x", got.Hash, got.Digest, fuzzDigest)
		}
		if _, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: crypto.SHA256, Digest: other[:]}); !errors.Is(err, ErrImprintMismatch) {
			t.Fatalf("token accepted for one digest is not refused for another: %v", err)
		}
	})
}

// rawInput as FuzzVerifyToken's at feeds patch alone, not spliced.
const rawInput = 0xffff
