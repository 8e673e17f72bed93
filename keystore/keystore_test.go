package keystore_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
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
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	testdb.Cleanup()
	os.Exit(code)
}

// open makes a fresh token and store and opens a keystore on them.
func open(t *testing.T, mode keystore.Mode, tweak func(*keystore.Config)) (*keystore.HSM, *softhsmtest.Token) {
	t.Helper()
	tok := softhsmtest.New(t)
	st := testdb.Default(t).Open(t)
	cfg := keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Mode: keystore.ModeToken}
	if tweak != nil {
		tweak(&cfg)
	}
	ks, err := keystore.Open(context.Background(), cfg, st, nil)
	if err != nil {
		t.Fatalf("open keystore: %v", err)
	}
	t.Cleanup(func() { ks.Close() })
	if err := ks.InitKEK(context.Background()); err != nil {
		t.Fatalf("init kek: %v", err)
	}
	if mode == keystore.ModeWrapped {
		// Reopen in wrapped mode now that the KEK exists.
		ks.Close()
		cfg.Mode = keystore.ModeWrapped
		ks, err = keystore.Open(context.Background(), cfg, st, nil)
		if err != nil {
			t.Fatalf("open keystore in wrapped mode: %v", err)
		}
		t.Cleanup(func() { ks.Close() })
	}
	return ks, tok
}

func digestOf(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	}
	d := sha256.Sum256(msg)
	return d[:]
}

// opensslVerify checks sig over msg with the public key, using openssl.
func opensslVerify(t *testing.T, pub crypto.PublicKey, scheme keystore.Scheme, h crypto.Hash, msg, sig []byte) error {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubPath := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	args := []string{"dgst", "-" + strings.ToLower(strings.ReplaceAll(h.String(), "-", "")),
		"-verify", pubPath, "-signature", write("sig", sig)}
	if scheme == keystore.PSS {
		args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")
	}
	args = append(args, write("msg", msg))
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		return fmt.Errorf("openssl %v: %v: %s", args, err, out)
	}
	return nil
}

func goVerify(pub crypto.PublicKey, scheme keystore.Scheme, h crypto.Hash, digest, sig []byte) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(p, digest, sig)
	case *rsa.PublicKey:
		if scheme == keystore.PSS {
			return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	}
	return false
}

func TestGenerateSignVerify(t *testing.T) {
	type scheme struct {
		s keystore.Scheme
		h crypto.Hash
	}
	cases := []struct {
		typ     keystore.Type
		schemes []scheme
	}{
		{keystore.ECP256, []scheme{{keystore.ECDSA, crypto.SHA256}}},
		{keystore.ECP384, []scheme{{keystore.ECDSA, crypto.SHA384}}},
		{keystore.RSA2048, []scheme{{keystore.PKCS1v15, crypto.SHA256}, {keystore.PSS, crypto.SHA256}, {keystore.PKCS1v15, crypto.SHA512}}},
		{keystore.RSA3072, []scheme{{keystore.PKCS1v15, crypto.SHA384}, {keystore.PSS, crypto.SHA512}}},
	}
	for _, mode := range []keystore.Mode{keystore.ModeToken, keystore.ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) {
			ks, _ := open(t, mode, nil)
			ctx := context.Background()
			for _, c := range cases {
				t.Run(string(c.typ), func(t *testing.T) {
					key, err := ks.Generate(ctx, "12345678Z", c.typ)
					if err != nil {
						t.Fatalf("generate: %v", err)
					}
					if key.Mode != mode || key.Type != c.typ {
						t.Fatalf("got %s/%s, want %s/%s", key.Mode, key.Type, mode, c.typ)
					}
					got, err := ks.Key(ctx, key.ID)
					if err != nil || got.Owner != "12345678Z" {
						t.Fatalf("key lookup: %+v, %v", got, err)
					}
					sg, err := ks.Signer(ctx, key.ID)
					if err != nil {
						t.Fatal(err)
					}
					for _, sc := range c.schemes {
						msg := []byte("documento " + string(c.typ) + string(sc.s))
						d := digestOf(sc.h, msg)
						sigs, err := sg.SignDigests(ctx, sc.s, sc.h, [][]byte{d, d})
						if err != nil {
							t.Fatalf("%s/%v: sign: %v", sc.s, sc.h, err)
						}
						for _, sig := range sigs {
							if !goVerify(key.Public, sc.s, sc.h, d, sig) {
								t.Fatalf("%s/%v: Go rejects the signature", sc.s, sc.h)
							}
						}
						if err := opensslVerify(t, key.Public, sc.s, sc.h, msg, sigs[0]); err != nil {
							t.Fatal(err)
						}
						bad := append([]byte(nil), msg...)
						bad[0] ^= 1
						if err := opensslVerify(t, key.Public, sc.s, sc.h, bad, sigs[0]); err == nil {
							t.Fatalf("%s/%v: openssl accepts a signature over a changed message", sc.s, sc.h)
						}
					}
					// crypto.Signer, as x509 and CMS code use it.
					d := digestOf(crypto.SHA256, []byte("crypto.Signer"))
					var opts crypto.SignerOpts = crypto.SHA256
					if c.typ.IsRSA() {
						opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
					}
					sig, err := sg.Sign(rand.Reader, d, opts)
					if err != nil {
						t.Fatalf("crypto.Signer: %v", err)
					}
					sch := keystore.ECDSA
					if c.typ.IsRSA() {
						sch = keystore.PSS
					}
					if !goVerify(sg.Public(), sch, crypto.SHA256, d, sig) {
						t.Fatal("crypto.Signer signature does not verify")
					}
				})
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	for _, mode := range []keystore.Mode{keystore.ModeToken, keystore.ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) {
			ks, _ := open(t, mode, nil)
			ctx := context.Background()
			ec, err := ks.Generate(ctx, "12345678Z", keystore.ECP256)
			if err != nil {
				t.Fatal(err)
			}
			rsaKey, err := ks.Generate(ctx, "12345678Z", keystore.RSA2048)
			if err != nil {
				t.Fatal(err)
			}
			d := digestOf(crypto.SHA256, []byte("x"))
			sign := func(id string, s keystore.Scheme, h crypto.Hash, digests ...[]byte) error {
				sg, err := ks.Signer(ctx, id)
				if err != nil {
					return err
				}
				_, err = sg.SignDigests(ctx, s, h, digests)
				return err
			}
			cases := []struct {
				name string
				err  error
				want error
			}{
				{"short digest", sign(ec.ID, keystore.ECDSA, crypto.SHA256, d[:31]), keystore.ErrDigestLength},
				{"sha384 length for sha256", sign(ec.ID, keystore.ECDSA, crypto.SHA256, make([]byte, 48)), keystore.ErrDigestLength},
				{"second digest bad", sign(rsaKey.ID, keystore.PKCS1v15, crypto.SHA256, d, d[:20]), keystore.ErrDigestLength},
				{"unsupported hash", sign(ec.ID, keystore.ECDSA, crypto.SHA1, make([]byte, 20)), keystore.ErrUnsupported},
				{"rsa scheme on ec key", sign(ec.ID, keystore.PKCS1v15, crypto.SHA256, d), keystore.ErrUnsupported},
				{"ecdsa on rsa key", sign(rsaKey.ID, keystore.ECDSA, crypto.SHA256, d), keystore.ErrUnsupported},
				{"unknown key", sign("00112233445566778899aabbccddeeff", keystore.ECDSA, crypto.SHA256, d), keystore.ErrKeyNotFound},
			}
			for _, c := range cases {
				if !errors.Is(c.err, c.want) {
					t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
				}
			}
			if _, err := ks.Key(ctx, "nope"); !errors.Is(err, keystore.ErrKeyNotFound) {
				t.Errorf("Key(unknown): %v", err)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	for _, mode := range []keystore.Mode{keystore.ModeToken, keystore.ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) {
			ks, _ := open(t, mode, nil)
			ctx := context.Background()
			key, err := ks.Generate(ctx, "X1234567L", keystore.ECP256)
			if err != nil {
				t.Fatal(err)
			}
			// A signer held from before the destruction must stop working too.
			held, err := ks.Signer(ctx, key.ID)
			if err != nil {
				t.Fatal(err)
			}
			d := digestOf(crypto.SHA256, []byte("before"))
			if _, err := held.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{d}); err != nil {
				t.Fatal(err)
			}
			if err := ks.Destroy(ctx, key.ID); err != nil {
				t.Fatalf("destroy: %v", err)
			}
			if _, err := ks.Signer(ctx, key.ID); !errors.Is(err, keystore.ErrKeyDestroyed) {
				t.Fatalf("signer after destroy: %v, want ErrKeyDestroyed", err)
			}
			if _, err := held.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{d}); err == nil {
				t.Fatal("a signer held from before still signs after destroy")
			}
			if err := ks.Destroy(ctx, key.ID); !errors.Is(err, keystore.ErrKeyDestroyed) {
				t.Fatalf("second destroy: %v", err)
			}
			got, err := ks.Key(ctx, key.ID)
			if err != nil || got.DestroyedAt.IsZero() {
				t.Fatalf("record after destroy: %+v %v", got, err)
			}
		})
	}
}

func TestConcurrentSigning(t *testing.T) {
	for _, mode := range []keystore.Mode{keystore.ModeToken, keystore.ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) {
			// A live-key cache smaller than the key set makes goroutines
			// evict each other's keys while they sign.
			ks, _ := open(t, mode, func(c *keystore.Config) { c.Sessions = 4; c.CacheSize = 3 })
			ctx := context.Background()
			var keys []*keystore.Key
			for i := 0; i < 6; i++ {
				k, err := ks.Generate(ctx, fmt.Sprintf("user%d", i), keystore.ECP256)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 40; i++ {
						k := keys[(g+i)%len(keys)]
						sg, err := ks.Signer(ctx, k.ID)
						if err != nil {
							errs <- err
							return
						}
						d := digestOf(crypto.SHA256, []byte(fmt.Sprint(g, i)))
						sigs, err := sg.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{d, d, d})
						if err != nil {
							errs <- err
							return
						}
						for _, s := range sigs {
							if !ecdsa.VerifyASN1(k.Public.(*ecdsa.PublicKey), d, s) {
								errs <- fmt.Errorf("bad signature from key %s", k.ID)
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

func TestOpenErrors(t *testing.T) {
	tok := softhsmtest.New(t)
	st := testdb.Default(t).Open(t)
	cases := []struct {
		name    string
		cfg     keystore.Config
		want    error
		message string
	}{
		{"wrong PIN", keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: "not-the-pin"}, keystore.ErrLogin, "wrong PIN"},
		{"missing module", keystore.Config{Module: "/nonexistent/libpkcs11.so", TokenLabel: tok.Label, PIN: tok.PIN}, keystore.ErrModule, "/nonexistent/libpkcs11.so"},
		{"not a module", keystore.Config{Module: "/etc/hostname", TokenLabel: tok.Label, PIN: tok.PIN}, keystore.ErrModule, "not a PKCS#11 library"},
		{"unknown token", keystore.Config{Module: tok.Module, TokenLabel: "no-such-token", PIN: tok.PIN}, keystore.ErrTokenUnavailable, "no-such-token"},
		{"wrapped without KEK", keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Mode: keystore.ModeWrapped}, keystore.ErrKeyNotFound, "firmactl init"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks, err := keystore.Open(context.Background(), c.cfg, st, nil)
			if err == nil {
				ks.Close()
				t.Fatal("open succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Fatalf("error %q does not say %q", err, c.message)
			}
			if c.cfg.PIN != "" && strings.Contains(err.Error(), c.cfg.PIN) {
				t.Fatalf("error %q reveals the PIN", err)
			}
		})
	}
	// The token is not locked by the failed login: the right PIN still works.
	ks, err := keystore.Open(context.Background(), keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}, st, nil)
	if err != nil {
		t.Fatalf("open after a wrong PIN: %v", err)
	}
	ks.Close()
}
