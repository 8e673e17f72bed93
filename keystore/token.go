package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/firma-cloud/firma/store"
)

var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
)

// keyPairTemplates returns the mechanism and templates that generate a key
// pair of type t. token says whether the objects persist on the token.
// A token private key is never extractable; a session private key in
// wrapped mode is extractable only so that it can be wrapped under the KEK:
// it is sensitive, so the token never reveals it in clear.
func keyPairTemplates(t Type, token bool, id []byte, label string) (*pkcs11.Mechanism, []*pkcs11.Attribute, []*pkcs11.Attribute, error) {
	pub := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	priv := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, !token),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	switch t {
	case ECP256, ECP384:
		oid := oidP256
		if t == ECP384 {
			oid = oidP384
		}
		params, err := asn1.Marshal(oid)
		if err != nil {
			return nil, nil, nil, err
		}
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
		return pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil), pub, priv, nil
	case RSA2048, RSA3072:
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, t.rsaBits()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil), pub, priv, nil
	}
	return nil, nil, nil, fmt.Errorf("type %q: %w", t, ErrUnsupported)
}

// readPublic reads the public key of type t from a public key object.
func (k *HSM) readPublic(s *session, h pkcs11.ObjectHandle, t Type) (crypto.PublicKey, error) {
	if t.IsRSA() {
		attrs, err := k.p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		e := new(big.Int).SetBytes(attrs[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, errors.New("read public key: public exponent out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())}, nil
	}
	attrs, err := k.p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	// CKA_EC_POINT is the DER encoding of an OCTET STRING holding the point.
	var point []byte
	if rest, err := asn1.Unmarshal(attrs[0].Value, &point); err != nil || len(rest) != 0 {
		point = attrs[0].Value
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(t.curve(), point)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	return pub, nil
}

// generateToken makes a key pair of token objects identified by id.
func (k *HSM) generateToken(ctx context.Context, key *Key, id []byte) error {
	mech, pubT, privT, err := keyPairTemplates(key.Type, true, id, "firma:"+key.Owner)
	if err != nil {
		return err
	}
	return k.pool.Do(ctx, func(s *session) error {
		pubH, _, err := k.p.GenerateKeyPair(s.h, []*pkcs11.Mechanism{mech}, pubT, privT)
		if err != nil {
			return fmt.Errorf("generate key pair: %w", err)
		}
		key.Public, err = k.readPublic(s, pubH, key.Type)
		return err
	})
}

// findObjects returns the handles of the objects of class with CKA_ID id.
func (k *HSM) findObjects(s *session, class uint, id []byte) ([]pkcs11.ObjectHandle, error) {
	if err := k.p.FindObjectsInit(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}); err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	hs, _, err := k.p.FindObjects(s.h, 4)
	if ferr := k.p.FindObjectsFinal(s.h); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	return hs, nil
}

// findPrivate finds the private key token object with CKA_ID id. It runs
// once per key and process; the handle is cached by the Signer.
func (k *HSM) findPrivate(ctx context.Context, s *session, id []byte) (pkcs11.ObjectHandle, error) {
	hs, err := k.findObjects(s, pkcs11.CKO_PRIVATE_KEY, id)
	if err != nil {
		return 0, err
	}
	if len(hs) == 0 {
		return 0, fmt.Errorf("private key %x not on token: %w", id, k.missing(ctx, hex.EncodeToString(id)))
	}
	return hs[0], nil
}

// missing says why the object of a key is not on the token. Only the
// store decides that a key was destroyed; a live key's object that cannot
// be found means the token is not all there (its storage went away, a
// failover is under way), which the pool treats as a lost token.
func (k *HSM) missing(ctx context.Context, id string) error {
	if _, dead := k.destroyed.Load(id); dead {
		return ErrKeyDestroyed
	}
	rec, err := k.store.Key(ctx, id)
	switch {
	case err == nil && rec.Destroyed():
		return ErrKeyDestroyed
	case errors.Is(err, store.ErrNotFound):
		return ErrKeyNotFound
	}
	return errObjectLost
}

// destroyToken destroys the token key pair with CKA_ID id.
func (k *HSM) destroyToken(ctx context.Context, id []byte) error {
	return k.pool.Do(ctx, func(s *session) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			hs, err := k.findObjects(s, class, id)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if err := k.p.DestroyObject(s.h, h); err != nil {
					return fmt.Errorf("destroy object: %w", err)
				}
			}
		}
		return nil
	})
}
