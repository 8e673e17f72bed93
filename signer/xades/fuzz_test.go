package xades_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/firma-cloud/firma/signer/xades"
)

// FuzzVerify splices bytes into a real enveloped signature (an in-memory
// key: no HSM in the worker; a splice keeps inputs small, see
// docs/fuzzing.md) and checks that Verify never panics, fails only with
// its own errors, and never passes a signature whose signed element was
// changed.
func FuzzVerify(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "FUZZ"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	signed, err := xades.Sign(context.Background(), []byte(`<r xmlns="urn:x"><a id="v">1</a></r>`), key, []*x509.Certificate{cert}, xades.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(20), uint8(0), []byte("2"))
	f.Add(uint16(0), uint8(5), []byte("<!DOCTYPE r>"))
	f.Add(uint16(300), uint8(1), []byte("Id"))
	f.Fuzz(func(t *testing.T, pos uint16, cut uint8, patch []byte) {
		p := int(pos) % (len(signed) + 1)
		end := min(p+int(cut), len(signed))
		in := append(append(append([]byte{}, signed[:p]...), patch...), signed[end:]...)
		vs, err := xades.Verify(in, nil, xades.Limits{})
		if err != nil {
			for _, e := range []error{xades.ErrMalformed, xades.ErrDoctype, xades.ErrTooLarge, xades.ErrNoSignature} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("untyped error %v", err)
		}
		for _, v := range vs {
			if v.Err == nil && !bytes.Contains(in, []byte(`<a id="v">1</a>`)) {
				t.Fatalf("valid after the signed element changed:\n%s", in)
			}
		}
	})
}
