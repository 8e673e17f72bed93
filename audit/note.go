package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// golang.org/x/mod/sumdb/note only ships Ed25519, and the audit key lives
// in the HSM, where the keystore holds ECDSA P-256 keys. These implement
// note.Signer and note.Verifier for signature type 0x02 of C2SP
// signed-note (ECDSA, as github.com/transparency-dev/witness does it): the
// signature is ASN.1 DER over SHA-256 of the note text and the key ID is
// the first four bytes of SHA-256 of the public key's DER SPKI.

// algECDSA is the C2SP signed-note signature type byte for ECDSA.
const algECDSA = 0x02

var (
	_ note.Signer   = (*ecdsaNoteSigner)(nil)
	_ note.Verifier = (*ecdsaNoteVerifier)(nil)
)

type ecdsaNoteSigner struct {
	name string
	hash uint32
	s    crypto.Signer
}

// NewNoteSigner returns a note.Signer named name that signs with s, an
// ECDSA P-256 key (the HSM audit key from keystore).
func NewNoteSigner(name string, s crypto.Signer) (note.Signer, error) {
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("note signer: %w: want an ECDSA P-256 key, have %T", ErrInvalid, s.Public())
	}
	if !validName(name) {
		return nil, fmt.Errorf("note signer: %w: bad key name %q", ErrInvalid, name)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("note signer: %w", err)
	}
	return &ecdsaNoteSigner{name: name, hash: ecdsaKeyHash(spki), s: s}, nil
}

func (s *ecdsaNoteSigner) Name() string    { return s.name }
func (s *ecdsaNoteSigner) KeyHash() uint32 { return s.hash }
func (s *ecdsaNoteSigner) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	sig, err := s.s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return sig, nil
}

func ecdsaKeyHash(spki []byte) uint32 {
	h := sha256.Sum256(spki)
	return binary.BigEndian.Uint32(h[:4])
}

// validName is note's rule for key names: non-empty, no spaces or pluses.
func validName(name string) bool {
	return name != "" && utf8Printable(name) && !strings.ContainsAny(name, " +")
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// NoteVerifierKey returns the verifier key string auditors configure to
// check checkpoints: "name+keyhash+base64(0x02 || SPKI DER)", in the format
// of note.NewVerifier's keys.
func NoteVerifierKey(name string, pub crypto.PublicKey) (string, error) {
	p, ok := pub.(*ecdsa.PublicKey)
	if !ok || p.Curve != elliptic.P256() {
		return "", fmt.Errorf("note verifier key: %w: want an ECDSA P-256 key, have %T", ErrInvalid, pub)
	}
	if !validName(name) {
		return "", fmt.Errorf("note verifier key: %w: bad key name %q", ErrInvalid, name)
	}
	spki, err := x509.MarshalPKIXPublicKey(p)
	if err != nil {
		return "", fmt.Errorf("note verifier key: %w", err)
	}
	return fmt.Sprintf("%s+%08x+%s", name, ecdsaKeyHash(spki), base64.StdEncoding.EncodeToString(append([]byte{algECDSA}, spki...))), nil
}

type ecdsaNoteVerifier struct {
	name string
	hash uint32
	pub  *ecdsa.PublicKey
}

func (v *ecdsaNoteVerifier) Name() string    { return v.name }
func (v *ecdsaNoteVerifier) KeyHash() uint32 { return v.hash }
func (v *ecdsaNoteVerifier) Verify(msg, sig []byte) bool {
	d := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(v.pub, d[:], sig)
}

// ErrVerifierKey means a verifier key string is malformed.
var ErrVerifierKey = errors.New("malformed verifier key")

// NewNoteVerifier parses a verifier key: an ECDSA one made by
// NoteVerifierKey or an Ed25519 one as note.NewVerifier takes.
func NewNoteVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(hash16) != 8 {
		return nil, fmt.Errorf("verifier key: %w", ErrVerifierKey)
	}
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) < 2 {
		return nil, fmt.Errorf("verifier key: %w", ErrVerifierKey)
	}
	if key[0] != algECDSA {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, fmt.Errorf("verifier key: %w: %v", ErrVerifierKey, err)
		}
		return v, nil
	}
	h, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil || uint32(h) != ecdsaKeyHash(key[1:]) {
		return nil, fmt.Errorf("verifier key: %w: key hash does not match the key", ErrVerifierKey)
	}
	pub, err := x509.ParsePKIXPublicKey(key[1:])
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w: %v", ErrVerifierKey, err)
	}
	p, ok := pub.(*ecdsa.PublicKey)
	if !ok || p.Curve != elliptic.P256() {
		return nil, fmt.Errorf("verifier key: %w: not an ECDSA P-256 key", ErrVerifierKey)
	}
	return &ecdsaNoteVerifier{name: name, hash: uint32(h), pub: p}, nil
}

// NewNoteVerifiers parses verifier keys into the set note.Open takes.
func NewNoteVerifiers(vkeys ...string) (note.Verifiers, error) {
	vs := make([]note.Verifier, 0, len(vkeys))
	for _, k := range vkeys {
		v, err := NewNoteVerifier(k)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}
