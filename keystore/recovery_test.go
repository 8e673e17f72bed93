package keystore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"

	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/testdb"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want errClass
	}{
		{"nil", nil, classOK},
		{"not pkcs11", errors.New("disk full"), classOK},
		{"bad mechanism", pkcs11.Error(pkcs11.CKR_MECHANISM_INVALID), classOK},
		{"stale key handle", pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID), classOK},
		{"destroyed key", fmt.Errorf("sign: %w", ErrKeyDestroyed), classOK},
		{"session handle invalid", pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID), classSession},
		{"session closed", fmt.Errorf("sign: %w", pkcs11.Error(pkcs11.CKR_SESSION_CLOSED)), classSession},
		{"general error", pkcs11.Error(pkcs11.CKR_GENERAL_ERROR), classSession},
		{"not logged in", pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN), classLogin},
		{"device removed", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED), classToken},
		{"token not present", pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), classToken},
		{"slot id invalid", pkcs11.Error(pkcs11.CKR_SLOT_ID_INVALID), classToken},
		{"device error", pkcs11.Error(pkcs11.CKR_DEVICE_ERROR), classToken},
		{"module not initialised", pkcs11.Error(pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED), classToken},
		{"live key's object missing", fmt.Errorf("private key 01 not on token: %w", errObjectLost), classToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
	if !errors.Is(errObjectLost, ErrTokenUnavailable) || errors.Is(errObjectLost, ErrKeyDestroyed) {
		t.Fatal("a live key's missing object must read as an unavailable token, never a destroyed key")
	}
}

// tokenDir is the directory SoftHSM2 keeps the token labelled label in.
func tokenDir(t *testing.T, dir, label string) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "tokens", e.Name(), "token.object"))
		if err == nil && bytes.Contains(b, []byte(label)) {
			return filepath.Join(dir, "tokens", e.Name())
		}
	}
	t.Fatalf("no directory holds token %q", label)
	return ""
}

// TestTokenOutageRecovers moves the token's directory away and back: while
// it is away signing and Ping fail as an unavailable token (never a
// destroyed key), and once it is back both work again in the same process,
// with the Signer callers held all along. A destroyed key stays destroyed.
// Cost: well under a second (a few module re-initialisations).
func TestTokenOutageRecovers(t *testing.T) {
	for _, mode := range []Mode{ModeToken, ModeWrapped} {
		t.Run(string(mode), func(t *testing.T) { tokenOutage(t, mode) })
	}
}

func tokenOutage(t *testing.T, mode Mode) {
	ctx := context.Background()
	tok := softhsmtest.New(t)
	st := testdb.Default(t).Open(t)
	cfg := Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Sessions: 2, Registerer: prometheus.NewRegistry()}
	if mode == ModeWrapped {
		ks, err := Open(ctx, cfg, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ks.InitKEK(ctx); err != nil {
			t.Fatal(err)
		}
		ks.Close()
		cfg.Mode, cfg.Registerer = ModeWrapped, prometheus.NewRegistry()
	}
	ks, err := Open(ctx, cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	key, err := ks.Generate(ctx, "12345678Z", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := ks.Generate(ctx, "12345678Z", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	signOK(t, ks, key)
	if err := ks.Ping(ctx); err != nil {
		t.Fatalf("ping with the token there: %v", err)
	}
	sg, err := ks.Signer(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	dir := tokenDir(t, tok.Dir, tok.Label)
	// Out of the tokens directory: SoftHSM2 would find it again in any
	// directory under it.
	away := filepath.Join(tok.Dir, "away-"+filepath.Base(dir))
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(away, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)

	d := sha256.Sum256([]byte("outage"))
	// SoftHSM2 may still sign with an object it holds in memory; Ping
	// reads the token's index and notices first.
	for i := range 3 {
		if err := ks.Ping(ctx); !errors.Is(err, ErrTokenUnavailable) {
			t.Fatalf("ping %d with the token away: %v, want ErrTokenUnavailable", i, err)
		}
		_, err := sg.SignDigests(ctx, ECDSA, crypto.SHA256, [][]byte{d[:]})
		if !errors.Is(err, ErrTokenUnavailable) || errors.Is(err, ErrKeyDestroyed) {
			t.Fatalf("sign %d with the token away: %v, want ErrTokenUnavailable", i, err)
		}
	}

	restore()
	// The backoff between re-initialisations is at most reinitMax; a few
	// tries cover it without a fixed sleep.
	var last error
	for range 40 {
		if last = ks.Ping(ctx); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("ping after the token came back: %v", last)
	}
	sigs, err := sg.SignDigests(ctx, ECDSA, crypto.SHA256, [][]byte{d[:]})
	if err != nil {
		t.Fatalf("sign after the token came back: %v", err)
	}
	if !ecdsa.VerifyASN1(key.Public.(*ecdsa.PublicKey), d[:], sigs[0]) {
		t.Fatal("signature after recovery does not verify")
	}
	signOK(t, ks, key)

	gs, err := ks.Signer(ctx, gone.ID) // held by a caller across the destruction
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if mode == ModeToken {
		// Forget what this process saw, so the store alone decides.
		ks.destroyed.Delete(gone.ID)
	}
	if _, err := gs.SignDigests(ctx, ECDSA, crypto.SHA256, [][]byte{d[:]}); !errors.Is(err, ErrKeyDestroyed) {
		t.Fatalf("sign with a destroyed key: %v, want ErrKeyDestroyed", err)
	}
}
