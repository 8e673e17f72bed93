package keystore_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/firma-cloud/firma/keystore"
)

// TestSchemeFor pins the one scheme choice every signer in the service
// makes from a key type and crypto.SignerOpts.
func TestSchemeFor(t *testing.T) {
	for _, c := range []struct {
		name string
		typ  keystore.Type
		opts crypto.SignerOpts
		want keystore.Scheme
		err  error
	}{
		{"ec hash", keystore.ECP256, crypto.SHA256, keystore.ECDSA, nil},
		{"ec ignores pss options", keystore.ECP384, &rsa.PSSOptions{Hash: crypto.SHA384}, keystore.ECDSA, nil},
		{"ec default", keystore.ECP256, nil, keystore.ECDSA, nil},
		{"rsa hash", keystore.RSA2048, crypto.SHA256, keystore.PKCS1v15, nil},
		{"rsa default", keystore.RSA3072, nil, keystore.PKCS1v15, nil},
		{"rsa pss equals hash", keystore.RSA2048, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}, keystore.PSS, nil},
		{"rsa pss auto", keystore.RSA2048, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA384}, keystore.PSS, nil},
		{"rsa pss hash length", keystore.RSA3072, &rsa.PSSOptions{SaltLength: 64, Hash: crypto.SHA512}, keystore.PSS, nil},
		{"rsa pss other salt", keystore.RSA2048, &rsa.PSSOptions{SaltLength: 20, Hash: crypto.SHA256}, "", keystore.ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := keystore.SchemeFor(c.typ, c.opts)
			if !errors.Is(err, c.err) || got != c.want {
				t.Fatalf("SchemeFor(%s, %T) = %q, %v; want %q, %v", c.typ, c.opts, got, err, c.want, c.err)
			}
		})
	}
}

// TestSignContext checks the scheme follows the options, PSS included,
// and that no options is refused rather than guessed.
func TestSignContext(t *testing.T) {
	ks, _ := open(t, keystore.ModeToken, nil)
	ctx := context.Background()
	k, err := ks.Generate(ctx, "12345678Z", keystore.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := ks.Signer(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(crypto.SHA256, []byte("context"))
	for _, c := range []struct {
		opts   crypto.SignerOpts
		scheme keystore.Scheme
	}{
		{crypto.SHA256, keystore.PKCS1v15},
		{&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}, keystore.PSS},
	} {
		sig, err := sg.SignContext(ctx, d, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.scheme, err)
		}
		if !goVerify(sg.Public(), c.scheme, crypto.SHA256, d, sig) {
			t.Fatalf("%s: signature does not verify", c.scheme)
		}
	}
	if _, err := sg.SignContext(ctx, d, nil); !errors.Is(err, keystore.ErrUnsupported) {
		t.Fatalf("nil opts: %v", err)
	}
}
