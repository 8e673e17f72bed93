package transaction_test

import (
	"bytes"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/transaction"
)

func TestDeriveOTPKey(t *testing.T) {
	e := newEnv(t, nil)
	k1, err := transaction.DeriveOTPKey(e.ctx, e.ks)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := transaction.DeriveOTPKey(e.ctx, e.ks)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("keys %x and %x", k1, k2)
	}
	// A restart (new keystore on the same token and store) derives the same.
	e.restart()
	k3, err := transaction.DeriveOTPKey(e.ctx, e.ks)
	if err != nil || !bytes.Equal(k1, k3) {
		t.Fatalf("after restart: %x, %v", k3, err)
	}
	keys, err := e.ks.Keys(e.ctx, transaction.OTPKeyOwner, "", 10)
	if err != nil || len(keys) != 1 || keys[0].Type != keystore.RSA2048 || keys[0].Mode != keystore.ModeToken {
		t.Fatalf("HSM keys of %s: %v %+v", transaction.OTPKeyOwner, err, keys)
	}
	// The derived key works as the service's OTP key.
	if _, err := transaction.New(transaction.Options{Store: e.db, Portals: e.portals, Citizens: e.reg, Certificates: e.ca,
		Signing: e.signing, SMS: outboxOf(t, e), OTPKey: k1, BaseURL: "https://firma.example.es"}); err != nil {
		t.Fatal(err)
	}
}
