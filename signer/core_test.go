package signer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

// newCore opens a keystore on a fresh token and a core on it.
func newCore(t *testing.T, mode keystore.Mode, cfg signer.Config) (*signer.Core, *keystore.HSM, *sqlite.DB) {
	t.Helper()
	tok := softhsmtest.New(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kcfg := keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Sessions: 4}
	ks, err := keystore.Open(context.Background(), kcfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.InitKEK(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mode == keystore.ModeWrapped {
		ks.Close()
		kcfg.Mode = mode
		if ks, err = keystore.Open(context.Background(), kcfg, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { ks.Close() })
	return signer.New(ks, cfg), ks, st
}

func digests(h crypto.Hash, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		msg := []byte(fmt.Sprintf("documento %d", i))
		switch h {
		case crypto.SHA384:
			d := sha512.Sum384(msg)
			out[i] = d[:]
		case crypto.SHA512:
			d := sha512.Sum512(msg)
			out[i] = d[:]
		default:
			d := sha256.Sum256(msg)
			out[i] = d[:]
		}
	}
	return out
}

func verify(pub crypto.PublicKey, s keystore.Scheme, h crypto.Hash, d, sig []byte) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(p, d, sig)
	case *rsa.PublicKey:
		if s == keystore.PSS {
			return rsa.VerifyPSS(p, h, d, sig, nil) == nil
		}
		return rsa.VerifyPKCS1v15(p, h, d, sig) == nil
	}
	return false
}

func TestCoreSignsBatches(t *testing.T) {
	cases := []struct {
		typ    keystore.Type
		scheme keystore.Scheme
		hash   crypto.Hash
	}{
		{keystore.ECP256, keystore.ECDSA, crypto.SHA256},
		{keystore.ECP384, keystore.ECDSA, crypto.SHA384},
		{keystore.RSA2048, keystore.PKCS1v15, crypto.SHA256},
		{keystore.RSA2048, keystore.PSS, crypto.SHA256},
		{keystore.RSA3072, keystore.PKCS1v15, crypto.SHA512},
	}
	for _, mode := range []keystore.Mode{keystore.ModeToken, keystore.ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) {
			core, ks, _ := newCore(t, mode, signer.Config{VerifyECDSA: true})
			for _, c := range cases {
				t.Run(fmt.Sprintf("%s-%s-%v", c.typ, c.scheme, c.hash), func(t *testing.T) {
					key, err := ks.Generate(context.Background(), "12345678Z", c.typ)
					if err != nil {
						t.Fatal(err)
					}
					for _, n := range []int{1, 7, 64} {
						ds := digests(c.hash, n)
						sigs, err := core.Sign(context.Background(), signer.Request{KeyID: key.ID, Scheme: c.scheme, Hash: c.hash, Digests: ds})
						if err != nil {
							t.Fatalf("batch of %d: %v", n, err)
						}
						if len(sigs) != n {
							t.Fatalf("batch of %d: %d signatures", n, len(sigs))
						}
						for i := range sigs {
							if !verify(key.Public, c.scheme, c.hash, ds[i], sigs[i]) {
								t.Fatalf("batch of %d: signature %d does not verify over digest %d", n, i, i)
							}
						}
					}
					// One signature through openssl, on the digest itself.
					ds := digests(c.hash, 1)
					sigs, err := core.Sign(context.Background(), signer.Request{KeyID: key.ID, Scheme: c.scheme, Hash: c.hash, Digests: ds})
					if err != nil {
						t.Fatal(err)
					}
					opensslVerifyDigest(t, key.Public, c.scheme, c.hash, ds[0], sigs[0])
				})
			}
		})
	}
}

// opensslVerifyDigest checks a signature over a precomputed digest with
// openssl pkeyutl.
func opensslVerifyDigest(t *testing.T, pub crypto.PublicKey, s keystore.Scheme, h crypto.Hash, digest, sig []byte) {
	t.Helper()
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	files := map[string][]byte{
		"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"digest":  digest, "sig": sig,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	md := strings.ToLower(strings.ReplaceAll(h.String(), "-", ""))
	args := []string{"pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(dir, "pub.pem"),
		"-in", filepath.Join(dir, "digest"), "-sigfile", filepath.Join(dir, "sig"), "-pkeyopt", "digest:" + md}
	switch s {
	case keystore.PSS:
		args = append(args, "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:digest")
	case keystore.PKCS1v15:
		args = append(args, "-pkeyopt", "rsa_padding_mode:pkcs1")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestCoreRefusesBadRequests(t *testing.T) {
	core, ks, _ := newCore(t, keystore.ModeToken, signer.Config{MaxBatch: 10})
	ctx := context.Background()
	ec, err := ks.Generate(ctx, "12345678Z", keystore.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := ks.Generate(ctx, "12345678Z", keystore.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	good := digests(crypto.SHA256, 3)
	short := [][]byte{good[0], good[1][:16], good[2]}
	cases := []struct {
		name string
		req  signer.Request
		want error
		says string
	}{
		{"empty batch", signer.Request{KeyID: ec.ID, Scheme: keystore.ECDSA, Hash: crypto.SHA256}, signer.ErrBatch, "0 digests"},
		{"batch too large", signer.Request{KeyID: ec.ID, Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: digests(crypto.SHA256, 11)}, signer.ErrBatch, "11 digests"},
		{"wrong digest length", signer.Request{KeyID: ec.ID, Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: short}, signer.ErrDigestLength, "digest 1"},
		{"sha512 digest for sha256", signer.Request{KeyID: ec.ID, Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: digests(crypto.SHA512, 1)}, signer.ErrDigestLength, "must be 32 bytes, got 64"},
		{"unknown key", signer.Request{KeyID: "ffffffffffffffffffffffffffffffff", Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: good}, keystore.ErrKeyNotFound, "ffffffff"},
		{"destroyed key", signer.Request{KeyID: gone.ID, Scheme: keystore.ECDSA, Hash: crypto.SHA256, Digests: good}, keystore.ErrKeyDestroyed, gone.ID},
		{"rsa scheme on ec key", signer.Request{KeyID: ec.ID, Scheme: keystore.PSS, Hash: crypto.SHA256, Digests: good}, keystore.ErrUnsupported, "pss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sigs, err := core.Sign(ctx, c.req)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if sigs != nil {
				t.Fatal("partial result returned with an error")
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q does not say %q", err, c.says)
			}
		})
	}
}

// TestCoreWithholdsFaultySignatures swaps a key's stored public key for
// another's, as a tampered store would: the token then signs with a key the
// record does not describe, and the check must withhold the result.
func TestCoreWithholdsFaultySignatures(t *testing.T) {
	for _, typ := range []keystore.Type{keystore.RSA2048, keystore.ECP256} {
		t.Run(string(typ), func(t *testing.T) {
			core, ks, st := newCore(t, keystore.ModeToken, signer.Config{VerifyECDSA: true})
			ctx := context.Background()
			a, err := ks.Generate(ctx, "12345678Z", typ)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ks.Generate(ctx, "87654321X", typ)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.SQL().Exec("UPDATE keys SET public_key = (SELECT public_key FROM keys WHERE id = ?) WHERE id = ?", b.ID, a.ID); err != nil {
				t.Fatal(err)
			}
			scheme := keystore.ECDSA
			if typ.IsRSA() {
				scheme = keystore.PKCS1v15
			}
			sigs, err := core.Sign(ctx, signer.Request{KeyID: a.ID, Scheme: scheme, Hash: crypto.SHA256, Digests: digests(crypto.SHA256, 4)})
			if !errors.Is(err, signer.ErrFault) || sigs != nil {
				t.Fatalf("got %d signatures, err %v; want none and ErrFault", len(sigs), err)
			}
		})
	}
}

func TestCoreConcurrent(t *testing.T) {
	for _, mode := range []keystore.Mode{keystore.ModeToken, keystore.ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) {
			core, ks, _ := newCore(t, mode, signer.Config{VerifyECDSA: true})
			ctx := context.Background()
			var keys []*keystore.Key
			for i := 0; i < 4; i++ {
				typ := keystore.ECP256
				if i == 3 {
					typ = keystore.RSA2048
				}
				k, err := ks.Generate(ctx, fmt.Sprintf("user%d", i), typ)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := 0; g < 24; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						k := keys[(g+i)%len(keys)]
						scheme := keystore.ECDSA
						if k.Type.IsRSA() {
							scheme = keystore.PKCS1v15
						}
						ds := digests(crypto.SHA256, 1+(g*i)%20)
						sigs, err := core.Sign(ctx, signer.Request{KeyID: k.ID, Scheme: scheme, Hash: crypto.SHA256, Digests: ds})
						if err != nil {
							errs <- err
							return
						}
						for j := range sigs {
							if !verify(k.Public, scheme, crypto.SHA256, ds[j], sigs[j]) {
								errs <- fmt.Errorf("key %s: signature %d does not verify", k.ID, j)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
