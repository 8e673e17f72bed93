package keystore

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// Cloning the key-encryption key.
//
// Nodes of a cluster must hold the same KEK, or a key wrapped on one node
// cannot be unwrapped on another. HSM clusters share keys by wrapping them
// under a key the target HSM made, never in clear; this file does the same
// over plain PKCS#11:
//
//  1. the target token makes an RSA transport key pair (NewTransportKey);
//     its private half never leaves the target and can only unwrap;
//  2. the source token's security officer marks the transport public key
//     trusted (CKA_TRUSTED, which only the SO may set), and the KEK, made
//     with CKA_WRAP_WITH_TRUSTED, is wrapped under it with RSA-OAEP
//     (ExportKEK): a KEK with CKA_WRAP_WITH_TRUSTED cannot be wrapped by any
//     key the SO has not trusted, so the user PIN alone cannot extract it;
//  3. the target unwraps the blob into a KEK with the same label and the
//     same attributes, checks the key check value, and destroys the
//     transport key (ImportKEK).
//
// A KEK made by InitKEK (CKA_EXTRACTABLE false) can never be cloned: make
// the first KEK of a cluster with InitClonableKEK.

// ErrNotClonable is returned when the KEK cannot be wrapped for cloning.
var ErrNotClonable = errors.New("key-encryption key is not clonable")

// ErrCheckValue is returned when a cloned KEK's check value differs from
// the source's.
var ErrCheckValue = errors.New("key check value mismatch")

// TokenRef names a token and the credentials a KEK operation needs on it.
type TokenRef struct {
	Module string
	Label  string
	PIN    string // user PIN
	SOPIN  string // security officer PIN: only ExportKEK needs it
}

// TransportLabel is the label of the transport key pair on the target.
const TransportLabel = "firma-kek-transport"

// oaep is RSA-OAEP with SHA-1 and MGF1-SHA-1: the only parameters SoftHSM2
// (2.6) accepts for wrapping with RSA-OAEP. SHA-1 is safe in OAEP, which
// relies on neither collision nor second-preimage resistance.
func oaep() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
}

// kekTemplate is the template of a KEK: an AES key on the token that can
// wrap and unwrap and do nothing else. A clonable one is extractable, but
// only under a key the security officer trusts (CKA_WRAP_WITH_TRUSTED); any
// other never leaves the token.
func kekTemplate(label string, clonable bool) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, clonable),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if clonable {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true))
	}
	return t
}

// tokenSession is a read-write session on one token, outside any pool:
// KEK operations run once, from firmactl, and the SO login of ExportKEK
// cannot share a slot with a pool's user login.
type tokenSession struct {
	p      *pkcs11.Ctx
	module string
	h      pkcs11.SessionHandle
}

func openSession(t TokenRef) (*tokenSession, error) {
	if t.Module == "" || t.Label == "" {
		return nil, fmt.Errorf("%w: module and token label are required", ErrModule)
	}
	m, err := loadModule(t.Module)
	if err != nil {
		return nil, err
	}
	p := m.ctx
	slot, err := findSlot(p, t.Label)
	if err != nil {
		releaseModule(t.Module)
		return nil, err
	}
	h, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		releaseModule(t.Module)
		return nil, fmt.Errorf("open session on %q: %w: %w", t.Label, ErrTokenUnavailable, err)
	}
	return &tokenSession{p: p, module: t.Module, h: h}, nil
}

func (s *tokenSession) close() {
	s.p.Logout(s.h)
	s.p.CloseSession(s.h)
	releaseModule(s.module)
}

func (s *tokenSession) login(user uint, pin, label string) error {
	err := s.p.Login(s.h, user, pin)
	if err == nil || errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		return nil
	}
	who := "user"
	if user == pkcs11.CKU_SO {
		who = "security officer"
	}
	if errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
		return fmt.Errorf("log in to %q as %s: wrong PIN: %w", label, who, ErrLogin)
	}
	return fmt.Errorf("log in to %q as %s: %w: %w", label, who, ErrLogin, err)
}

// find returns the objects of class labelled label.
func (s *tokenSession) find(class uint, label string) ([]pkcs11.ObjectHandle, error) {
	if err := s.p.FindObjectsInit(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}); err != nil {
		return nil, fmt.Errorf("find %q: %w", label, err)
	}
	hs, _, err := s.p.FindObjects(s.h, 8)
	if ferr := s.p.FindObjectsFinal(s.h); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("find %q: %w", label, err)
	}
	return hs, nil
}

// findOne returns the single object of class labelled label, or 0.
func (s *tokenSession) findOne(class uint, label string) (pkcs11.ObjectHandle, error) {
	hs, err := s.find(class, label)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, nil
	case 1:
		return hs[0], nil
	}
	return 0, fmt.Errorf("more than one object labelled %q", label)
}

// checkValue identifies a KEK without revealing it: the first 8 bytes of
// the SHA-256 of the KEK's wrapping (AES key wrap, deterministic) of an
// all-zero AES key. It plays the part of CKA_CHECK_VALUE, which SoftHSM2
// computes for generated keys but leaves empty on unwrapped ones.
func (s *tokenSession) checkValue(kek pkcs11.ObjectHandle) ([]byte, error) {
	zero, err := s.p.CreateObject(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, make([]byte, 32)),
	})
	if err != nil {
		return nil, fmt.Errorf("key check value: %w", err)
	}
	defer s.p.DestroyObject(s.h, zero)
	blob, err := s.p.WrapKey(s.h, wrapMech, kek, zero)
	if err != nil {
		return nil, fmt.Errorf("key check value: %w", err)
	}
	sum := sha256.Sum256(blob)
	return sum[:8], nil
}

// HasKEK reports whether tok holds a key-encryption key labelled label,
// so that a caller can record the intent to make one (audit.ChangeKey)
// only when InitClonableKEK will make it.
func HasKEK(ctx context.Context, tok TokenRef, label string) (bool, error) {
	if label == "" {
		label = DefaultKEKLabel
	}
	s, err := openSession(tok)
	if err != nil {
		return false, err
	}
	defer s.close()
	if err := s.login(pkcs11.CKU_USER, tok.PIN, tok.Label); err != nil {
		return false, err
	}
	h, err := s.findOne(pkcs11.CKO_SECRET_KEY, label)
	return h != 0, err
}

// InitClonableKEK makes the AES-256 KEK labelled label on tok, clonable
// under a trusted key, unless a KEK with that label exists. It returns the
// key check value and whether the key was made now. A KEK under that
// label that cannot be cloned is refused with ErrNotClonable.
func InitClonableKEK(ctx context.Context, tok TokenRef, label string) ([]byte, bool, error) {
	if label == "" {
		label = DefaultKEKLabel
	}
	s, err := openSession(tok)
	if err != nil {
		return nil, false, err
	}
	defer s.close()
	if err := s.login(pkcs11.CKU_USER, tok.PIN, tok.Label); err != nil {
		return nil, false, err
	}
	h, err := s.findOne(pkcs11.CKO_SECRET_KEY, label)
	if err != nil {
		return nil, false, err
	}
	made := false
	if h != 0 {
		a, err := s.p.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, nil),
		})
		if err != nil {
			return nil, false, fmt.Errorf("read key-encryption key attributes: %w", err)
		}
		if !isTrue(a[0].Value) || !isTrue(a[1].Value) {
			return nil, false, fmt.Errorf("%q on %q exists and cannot be cloned; make the cluster's KEK under another label: %w",
				label, tok.Label, ErrNotClonable)
		}
	}
	if h == 0 {
		h, err = s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
			append(kekTemplate(label, true), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)))
		if err != nil {
			return nil, false, fmt.Errorf("generate key-encryption key: %w", err)
		}
		made = true
	}
	kcv, err := s.checkValue(h)
	return kcv, made, err
}

// NewTransportKey makes the RSA-3072 transport key pair on the target
// token and returns its public half. The private half is a token object
// that can unwrap and do nothing else; ImportKEK destroys it. An earlier
// transport key left by an interrupted clone is replaced.
func NewTransportKey(ctx context.Context, dst TokenRef) (*rsa.PublicKey, error) {
	s, err := openSession(dst)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.login(pkcs11.CKU_USER, dst.PIN, dst.Label); err != nil {
		return nil, err
	}
	old, err := s.find(pkcs11.CKO_PRIVATE_KEY, TransportLabel)
	if err != nil {
		return nil, err
	}
	for _, h := range old {
		if err := s.p.DestroyObject(s.h, h); err != nil {
			return nil, fmt.Errorf("remove old transport key: %w", err)
		}
	}
	pubH, _, err := s.p.GenerateKeyPair(s.h,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 3072),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, TransportLabel),
		})
	if err != nil {
		return nil, fmt.Errorf("generate transport key: %w", err)
	}
	defer s.p.DestroyObject(s.h, pubH)
	a, err := s.p.GetAttributeValue(s.h, pubH, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("read transport key: %w", err)
	}
	e := new(big.Int).SetBytes(a[1].Value)
	if !e.IsInt64() || e.Int64() > 1<<31 {
		return nil, errors.New("read transport key: public exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}, nil
}

// ExportKEK wraps the KEK labelled label on src under the transport key
// and returns the blob and the KEK's check value. The security officer
// puts the transport key on src as a trusted session object, which goes
// with the session: nothing stays on the source token.
func ExportKEK(ctx context.Context, src TokenRef, label string, transport *rsa.PublicKey) ([]byte, []byte, error) {
	if label == "" {
		label = DefaultKEKLabel
	}
	if transport == nil || transport.N.BitLen() < 2048 {
		return nil, nil, errors.New("export key-encryption key: transport key must be RSA of at least 2048 bits")
	}
	s, err := openSession(src)
	if err != nil {
		return nil, nil, err
	}
	defer s.close()
	if err := s.login(pkcs11.CKU_SO, src.SOPIN, src.Label); err != nil {
		return nil, nil, err
	}
	wrapH, err := s.p.CreateObject(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, transport.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(transport.E)).Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, TransportLabel),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("security officer: put trusted transport key: %w", err)
	}
	defer s.p.DestroyObject(s.h, wrapH)
	if err := s.p.Logout(s.h); err != nil {
		return nil, nil, fmt.Errorf("security officer logout: %w", err)
	}
	if err := s.login(pkcs11.CKU_USER, src.PIN, src.Label); err != nil {
		return nil, nil, err
	}
	kek, err := s.findOne(pkcs11.CKO_SECRET_KEY, label)
	if err != nil {
		return nil, nil, err
	}
	if kek == 0 {
		return nil, nil, fmt.Errorf("key-encryption key %q not found on %q: %w", label, src.Label, ErrKeyNotFound)
	}
	a, err := s.p.GetAttributeValue(s.h, kek, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, nil),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read key-encryption key attributes: %w", err)
	}
	if !isTrue(a[0].Value) {
		return nil, nil, fmt.Errorf("%q on %q was made not extractable (firmactl init); make the cluster's KEK with 'firmactl kek init': %w",
			label, src.Label, ErrNotClonable)
	}
	if !isTrue(a[1].Value) {
		return nil, nil, fmt.Errorf("%q on %q can be wrapped by untrusted keys; refusing to clone it: %w", label, src.Label, ErrNotClonable)
	}
	kcv, err := s.checkValue(kek)
	if err != nil {
		return nil, nil, err
	}
	blob, err := s.p.WrapKey(s.h, oaep(), wrapH, kek)
	if err != nil {
		return nil, nil, fmt.Errorf("wrap key-encryption key: %w", err)
	}
	return blob, kcv, nil
}

// ImportKEK unwraps blob with the transport key on dst into a KEK labelled
// label, checks that its check value is kcv, and destroys the transport
// key whatever the outcome. A KEK already on dst under that label is accepted only if it has the
// same check value: the clone is then already done.
func ImportKEK(ctx context.Context, dst TokenRef, label string, blob, kcv []byte) error {
	if label == "" {
		label = DefaultKEKLabel
	}
	s, err := openSession(dst)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.login(pkcs11.CKU_USER, dst.PIN, dst.Label); err != nil {
		return err
	}
	// The transport key serves one import, whatever its outcome.
	defer func() {
		if hs, err := s.find(pkcs11.CKO_PRIVATE_KEY, TransportLabel); err == nil {
			for _, h := range hs {
				s.p.DestroyObject(s.h, h)
			}
		}
	}()
	if h, err := s.findOne(pkcs11.CKO_SECRET_KEY, label); err != nil {
		return err
	} else if h != 0 {
		have, err := s.checkValue(h)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(have, kcv) != 1 {
			return fmt.Errorf("%q on %q is another key: %w", label, dst.Label, ErrCheckValue)
		}
		return nil
	}
	tr, err := s.findOne(pkcs11.CKO_PRIVATE_KEY, TransportLabel)
	if err != nil {
		return err
	}
	if tr == 0 {
		return fmt.Errorf("transport key %q not found on %q (make it first): %w", TransportLabel, dst.Label, ErrKeyNotFound)
	}
	h, err := s.p.UnwrapKey(s.h, oaep(), tr, blob, kekTemplate(label, true))
	if err != nil {
		return fmt.Errorf("unwrap key-encryption key: %w", err)
	}
	have, err := s.checkValue(h)
	if err == nil && subtle.ConstantTimeCompare(have, kcv) != 1 {
		err = fmt.Errorf("cloned %q: %w", label, ErrCheckValue)
	}
	if err != nil {
		s.p.DestroyObject(s.h, h)
		return err
	}
	return nil
}

// CloneKEK runs the three steps between two tokens both reachable from
// here (two partitions of a network HSM, or two SoftHSM2 tokens). It
// returns the KEK's check value.
func CloneKEK(ctx context.Context, src, dst TokenRef, label string) ([]byte, error) {
	pub, err := NewTransportKey(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("clone key-encryption key: %w", err)
	}
	blob, kcv, err := ExportKEK(ctx, src, label, pub)
	if err != nil {
		return nil, fmt.Errorf("clone key-encryption key: %w", err)
	}
	if err := ImportKEK(ctx, dst, label, blob, kcv); err != nil {
		return nil, fmt.Errorf("clone key-encryption key: %w", err)
	}
	return kcv, nil
}

func isTrue(v []byte) bool { return len(v) == 1 && v[0] != 0 }
