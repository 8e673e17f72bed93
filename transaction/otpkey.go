package transaction

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/firma-cloud/firma/keystore"
)

// OTPKeyOwner owns the HSM key the OTP key is derived from.
const OTPKeyOwner = "system:otp"

// otpKeyLabel is what the HSM key signs to give the OTP key.
const otpKeyLabel = "firma otp and session hash key v1"

// KeySource is the part of the keystore DeriveOTPKey uses;
// *keystore.HSM implements it.
type KeySource interface {
	Keys(ctx context.Context, owner, after string, limit int) ([]*keystore.Key, error)
	GenerateMode(ctx context.Context, owner string, t keystore.Type, m keystore.Mode) (*keystore.Key, error)
	Signer(ctx context.Context, id string) (*keystore.Signer, error)
}

var _ KeySource = (*keystore.HSM)(nil)

// DeriveOTPKey returns the key the OTP and session hashes are keyed with,
// derived from an RSA key that never leaves the HSM: the SHA-256 of its
// PKCS#1 v1.5 signature (deterministic) over a fixed label. Every node on
// the same token derives the same key, and a copy of the database alone
// cannot recompute any hash. The HSM key is made on first use.
func DeriveOTPKey(ctx context.Context, ks KeySource) ([]byte, error) {
	key, err := otpHSMKey(ctx, ks)
	if err != nil {
		return nil, err
	}
	sg, err := ks.Signer(ctx, key.ID)
	if err != nil {
		return nil, fmt.Errorf("otp key: %w", err)
	}
	digest := sha256.Sum256([]byte(otpKeyLabel))
	sig, err := sg.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("otp key: %w", err)
	}
	out := sha256.Sum256(sig)
	return out[:], nil
}

// otpHSMKey finds the live key of OTPKeyOwner with the lowest ID, making
// one if there is none; lowest ID so that nodes that raced to make one
// settle on the same.
func otpHSMKey(ctx context.Context, ks KeySource) (*keystore.Key, error) {
	for range 2 {
		keys, err := ks.Keys(ctx, OTPKeyOwner, "", 100)
		if err != nil {
			return nil, fmt.Errorf("otp key: %w", err)
		}
		for _, k := range keys {
			if k.DestroyedAt.IsZero() && k.Type == keystore.RSA2048 {
				return k, nil
			}
		}
		if _, err := ks.GenerateMode(ctx, OTPKeyOwner, keystore.RSA2048, keystore.ModeToken); err != nil {
			return nil, fmt.Errorf("otp key: %w", err)
		}
	}
	return nil, fmt.Errorf("otp key: the key made for %s cannot be found", OTPKeyOwner)
}
