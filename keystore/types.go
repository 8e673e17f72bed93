package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/errs"
)

// Sentinel errors callers tell apart with errors.Is.
var (
	ErrKeyNotFound      = errs.Sentinel(errs.NotFound, "key_not_found", "key not found")
	ErrKeyDestroyed     = errs.Sentinel(errs.FailedPrecondition, "key_destroyed", "key destroyed")
	ErrBusy             = errs.Sentinel(errs.TooMany, "hsm_busy", "all HSM sessions busy, retry later")
	ErrTokenUnavailable = errs.Sentinel(errs.Unavailable, "hsm_unavailable", "token unavailable")
	ErrLogin            = errs.Sentinel(errs.Unavailable, "hsm_login_failed", "token login failed")
	ErrModule           = errors.New("cannot load PKCS#11 module")
	ErrUnsupported      = errs.Sentinel(errs.Invalid, "unsupported", "unsupported")
	ErrClosed           = errs.Sentinel(errs.Unavailable, "keystore_closed", "keystore closed")
	ErrOwner            = errors.New("key owner is empty")
)

// Type is a key algorithm and size.
type Type string

// Key types. ECP256 is the default.
const (
	ECP256  Type = "ec-p256"
	ECP384  Type = "ec-p384"
	RSA2048 Type = "rsa-2048"
	RSA3072 Type = "rsa-3072"
)

// Types lists every supported key type.
var Types = []Type{ECP256, ECP384, RSA2048, RSA3072}

// ParseType parses a key type name; "" means ECP256.
func ParseType(s string) (Type, error) {
	if s == "" {
		return ECP256, nil
	}
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("key type %q: %w (want one of ec-p256, ec-p384, rsa-2048, rsa-3072)", s, ErrUnsupported)
}

// IsRSA reports whether t is an RSA type.
func (t Type) IsRSA() bool { return t == RSA2048 || t == RSA3072 }

func (t Type) curve() elliptic.Curve {
	switch t {
	case ECP256:
		return elliptic.P256()
	case ECP384:
		return elliptic.P384()
	}
	return nil
}

func (t Type) rsaBits() int {
	switch t {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	}
	return 0
}

// Mode is how private keys are held.
type Mode string

// Key modes.
const (
	ModeToken   Mode = "token"
	ModeWrapped Mode = "wrapped"
)

// ParseMode parses a key mode name; "" means ModeToken.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeToken:
		return ModeToken, nil
	case ModeWrapped:
		return ModeWrapped, nil
	}
	return "", fmt.Errorf("key mode %q: %w (want token or wrapped)", s, ErrUnsupported)
}

// Key describes one key pair. It holds no secret.
type Key struct {
	ID        string
	Owner     string
	Type      Type
	Mode      Mode
	Public    crypto.PublicKey
	CreatedAt time.Time
	// DestroyedAt is zero while the key is live.
	DestroyedAt time.Time
}

// Scheme is a signature scheme over a digest.
type Scheme string

// Signature schemes.
const (
	ECDSA    Scheme = "ecdsa"    // ASN.1 DER signature, as crypto/ecdsa and openssl produce
	PKCS1v15 Scheme = "pkcs1v15" // RSASSA-PKCS1-v1_5
	PSS      Scheme = "pss"      // RSASSA-PSS, MGF1 with the same hash, salt length = hash length
)

// CheckScheme reports whether scheme can be used with a key of type t.
func (t Type) CheckScheme(s Scheme) error {
	switch {
	case s == ECDSA && !t.IsRSA():
		return nil
	case (s == PKCS1v15 || s == PSS) && t.IsRSA():
		return nil
	}
	return fmt.Errorf("scheme %q with key type %q: %w", s, t, ErrUnsupported)
}

func publicType(pub crypto.PublicKey) (Type, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return ECP256, nil
		case elliptic.P384():
			return ECP384, nil
		}
	case *rsa.PublicKey:
		switch p.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		}
	}
	return "", fmt.Errorf("public key %T: %w", pub, ErrUnsupported)
}
