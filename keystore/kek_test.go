package keystore_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/firma-cloud/firma/keystore"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

func ref(tok *softhsmtest.Token) keystore.TokenRef {
	return keystore.TokenRef{Module: tok.Module, Label: tok.Label, PIN: tok.PIN, SOPIN: tok.SOPIN}
}

func openOn(t *testing.T, tok *softhsmtest.Token, st *sqlite.DB, label string) *keystore.HSM {
	t.Helper()
	ks, err := keystore.Open(context.Background(), keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
		Mode: keystore.ModeWrapped, KEKLabel: label}, st, nil)
	if err != nil {
		t.Fatalf("open keystore on %s: %v", tok.Label, err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// A key wrapped on token A signs on token B once the KEK is cloned, the way
// two nodes of a cluster share one store: the signature is checked by
// openssl against the public key recorded at generation.
func TestCloneKEKWrappedKeySignsOnOtherToken(t *testing.T) {
	ctx := context.Background()
	a, b := softhsmtest.New(t), softhsmtest.New(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const label = "cluster-kek"
	kcv, made, err := keystore.InitClonableKEK(ctx, ref(a), label)
	if err != nil || !made || len(kcv) == 0 {
		t.Fatalf("init clonable kek: made=%v kcv=%x err=%v", made, kcv, err)
	}
	again, made, err := keystore.InitClonableKEK(ctx, ref(a), label)
	if err != nil || made || !bytes.Equal(again, kcv) {
		t.Fatalf("second init made a new key or another check value: made=%v %x %x %v", made, again, kcv, err)
	}
	if _, err := keystore.Open(ctx, keystore.Config{Module: b.Module, TokenLabel: b.Label, PIN: b.PIN,
		Mode: keystore.ModeWrapped, KEKLabel: label}, st, nil); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("wrapped mode on B before cloning: %v, want ErrKeyNotFound", err)
	}
	got, err := keystore.CloneKEK(ctx, ref(a), ref(b), label)
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	if !bytes.Equal(got, kcv) {
		t.Fatalf("clone check value %x, want %x", got, kcv)
	}
	// Cloning again finds the same key there and changes nothing.
	if _, err := keystore.CloneKEK(ctx, ref(a), ref(b), label); err != nil {
		t.Fatalf("second clone: %v", err)
	}

	ksA, ksB := openOn(t, a, st, label), openOn(t, b, st, label)
	msg := []byte("Solicitud 2026/0042: firmada en el nodo B con una clave hecha en el nodo A\n")
	digest := sha256.Sum256(msg)
	for _, tc := range []struct {
		name     string
		gen, use *keystore.HSM
		typ      keystore.Type
		scheme   keystore.Scheme
	}{
		{"ec-p256 A to B", ksA, ksB, keystore.ECP256, keystore.ECDSA},
		{"rsa-2048 A to B", ksA, ksB, keystore.RSA2048, keystore.PSS},
		{"ec-p384 B to A", ksB, ksA, keystore.ECP384, keystore.ECDSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.gen.Generate(ctx, "12345678Z", tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			sg, err := tc.use.Signer(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			h := crypto.SHA256
			d := digest[:]
			if tc.typ == keystore.ECP384 {
				h = crypto.SHA384
				d = digestOf(h, msg)
			}
			sigs, err := sg.SignDigests(ctx, tc.scheme, h, [][]byte{d})
			if err != nil {
				t.Fatalf("sign on the other token: %v", err)
			}
			if err := opensslVerify(t, k.Public, tc.scheme, h, msg, sigs[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The transport key is gone from B, and nothing was left on A.
	for _, tok := range []*softhsmtest.Token{a, b} {
		if n := countLabelled(t, tok, keystore.TransportLabel); n != 0 {
			t.Errorf("%d transport key objects left on %s", n, tok.Label)
		}
	}
}

func TestCloneKEKRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, a, b *softhsmtest.Token) error
		want error
	}{
		{"KEK made by InitKEK is not extractable", func(t *testing.T, a, b *softhsmtest.Token) error {
			st, _ := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
			defer st.Close()
			ks, err := keystore.Open(ctx, keystore.Config{Module: a.Module, TokenLabel: a.Label, PIN: a.PIN, KEKLabel: "plain"}, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ks.Close()
			if err := ks.InitKEK(ctx); err != nil {
				t.Fatal(err)
			}
			// The SO cannot log in while this process holds a user login.
			ks.Close()
			_, err = keystore.CloneKEK(ctx, ref(a), ref(b), "plain")
			return err
		}, keystore.ErrNotClonable},
		{"wrong SO PIN", func(t *testing.T, a, b *softhsmtest.Token) error {
			keystore.InitClonableKEK(ctx, ref(a), "k")
			src := ref(a)
			src.SOPIN = "not-the-so-pin"
			_, err := keystore.CloneKEK(ctx, src, ref(b), "k")
			return err
		}, keystore.ErrLogin},
		{"no KEK on the source", func(t *testing.T, a, b *softhsmtest.Token) error {
			_, err := keystore.CloneKEK(ctx, ref(a), ref(b), "missing")
			return err
		}, keystore.ErrKeyNotFound},
		{"another key under the label on the target", func(t *testing.T, a, b *softhsmtest.Token) error {
			keystore.InitClonableKEK(ctx, ref(a), "k")
			keystore.InitClonableKEK(ctx, ref(b), "k")
			_, err := keystore.CloneKEK(ctx, ref(a), ref(b), "k")
			return err
		}, keystore.ErrCheckValue},
		{"blob checked against a wrong check value", func(t *testing.T, a, b *softhsmtest.Token) error {
			keystore.InitClonableKEK(ctx, ref(a), "k")
			pub, err := keystore.NewTransportKey(ctx, ref(b))
			if err != nil {
				t.Fatal(err)
			}
			blob, kcv, err := keystore.ExportKEK(ctx, ref(a), "k", pub)
			if err != nil {
				t.Fatal(err)
			}
			kcv[0] ^= 1
			err = keystore.ImportKEK(ctx, ref(b), "k", blob, kcv)
			if n := countLabelled(t, b, "k"); n != 0 {
				t.Errorf("a KEK with a wrong check value was kept on the target")
			}
			return err
		}, keystore.ErrCheckValue},
		{"import without a transport key", func(t *testing.T, a, b *softhsmtest.Token) error {
			return keystore.ImportKEK(ctx, ref(b), "k", []byte("blob"), []byte{1, 2, 3})
		}, keystore.ErrKeyNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := softhsmtest.New(t), softhsmtest.New(t)
			if err := tt.run(t, a, b); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// The property cloning rests on, checked against SoftHSM2 itself: with the
// user PIN alone, the clonable KEK cannot be wrapped under a key of the
// user's choosing, and the user cannot mark a key trusted.
func TestClonableKEKNeedsTrustedWrappingKey(t *testing.T) {
	ctx := context.Background()
	a := softhsmtest.New(t)
	if _, _, err := keystore.InitClonableKEK(ctx, ref(a), "k"); err != nil {
		t.Fatal(err)
	}
	p, s := rawSession(t, a)
	if err := p.Login(s, pkcs11.CKU_USER, a.PIN); err != nil {
		t.Fatal(err)
	}
	defer p.Logout(s)
	mod, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 2048))
	pubT := func(trusted bool) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, trusted),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, mod.SetBit(mod, 2047, 1).Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}
	}
	if _, err := p.CreateObject(s, pubT(true)); err == nil {
		t.Fatal("the user made a trusted key")
	}
	h, err := p.CreateObject(s, pubT(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "k")}); err != nil {
		t.Fatal(err)
	}
	kek, _, _ := p.FindObjects(s, 1)
	p.FindObjectsFinal(s)
	if len(kek) != 1 {
		t.Fatal("KEK not found")
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
	if blob, err := p.WrapKey(s, mech, h, kek[0]); err == nil {
		t.Fatalf("the KEK was wrapped under an untrusted key (%d bytes)", len(blob))
	} else if !errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_NOT_WRAPPABLE)) {
		t.Logf("refused with %v", err)
	}
}

// rawSession opens a read-write session on tok with the module loaded by
// the process (initialising it again is harmless).
func rawSession(t *testing.T, tok *softhsmtest.Token) (*pkcs11.Ctx, pkcs11.SessionHandle) {
	t.Helper()
	p := pkcs11.New(tok.Module)
	if err := p.Initialize(); err == nil {
		// Ours alone: finalise it, or SoftHSM2 would keep the slot list
		// it read now and miss the tokens of later tests.
		t.Cleanup(func() { p.Finalize() })
	} else if !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slots {
		if ti, err := p.GetTokenInfo(sl); err == nil && ti.Label == tok.Label {
			s, err := p.OpenSession(sl, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.CloseSession(s) })
			return p, s
		}
	}
	t.Fatalf("token %s not found", tok.Label)
	return nil, 0
}

// countLabelled counts the token objects labelled label, as the user sees
// them.
func countLabelled(t *testing.T, tok *softhsmtest.Token, label string) int {
	t.Helper()
	p, s := rawSession(t, tok)
	if err := p.Login(s, pkcs11.CKU_USER, tok.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		t.Fatal(err)
	}
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	hs, _, err := p.FindObjects(s, 16)
	p.FindObjectsFinal(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(hs)
}
