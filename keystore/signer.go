package keystore

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync/atomic"

	"github.com/miekg/pkcs11"

	"github.com/firma-cloud/firma/errs"
)

// ErrDigestLength is returned for a digest whose length does not match its
// hash function.
var ErrDigestLength = errs.Sentinel(errs.Invalid, "digest_length", "digest length does not match the hash")

// digestInfoPrefix holds the DER DigestInfo prefixes of RFC 8017 section
// 9.2, built once: CKM_RSA_PKCS signs DigestInfo || digest.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// pssParams are the CK_RSA_PKCS_PSS_PARAMS per hash, salt length equal to
// the hash length, as RFC 8017 recommends and most verifiers expect.
var pssParams = map[crypto.Hash][]byte{
	crypto.SHA256: pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32),
	crypto.SHA384: pkcs11.NewPSSParams(pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, 48),
	crypto.SHA512: pkcs11.NewPSSParams(pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, 64),
}

// CheckDigest reports whether d is a digest of hash h and h is supported.
func CheckDigest(h crypto.Hash, d []byte) error {
	if _, ok := digestInfoPrefix[h]; !ok {
		return fmt.Errorf("hash %v: %w (want SHA-256, SHA-384 or SHA-512)", h, ErrUnsupported)
	}
	if len(d) != h.Size() {
		return fmt.Errorf("%w: %v digest must be %d bytes, got %d", ErrDigestLength, h, h.Size(), len(d))
	}
	return nil
}

// Signer signs with one key held by an HSM (keystore.HSM). It implements
// crypto.Signer, so the CA, TSA and CMS code use HSM keys like any other.
type Signer struct {
	ks      *HSM
	key     *Key
	wrapped []byte // wrapped mode: the blob to unwrap
	cka     []byte // token mode: CKA_ID of the private key
	// handle is, in token mode, the cached private key handle and the pool
	// generation it was found in, nil if unknown. Handles are numbers the
	// module may give to other objects after a re-initialisation, so one
	// is used only by sessions of its own generation.
	handle atomic.Pointer[cachedHandle]
}

type cachedHandle struct {
	obj pkcs11.ObjectHandle
	gen uint64
}

var _ crypto.Signer = (*Signer)(nil)

// Key describes the key.
func (s *Signer) Key() *Key { return s.key }

// Public returns the public key.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public }

// SchemeFor is the one place a signature scheme is chosen from a key type
// and crypto.SignerOpts: ECDSA for EC keys; for RSA keys PSS when opts is
// *rsa.PSSOptions (the only salt length the token is asked for is the
// hash length, so any other is refused rather than silently changed), and
// PKCS#1 v1.5 otherwise. A nil opts asks for the key type's default.
func SchemeFor(t Type, opts crypto.SignerOpts) (Scheme, error) {
	if !t.IsRSA() {
		return ECDSA, nil
	}
	pss, ok := opts.(*rsa.PSSOptions)
	if !ok {
		return PKCS1v15, nil
	}
	if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto &&
		pss.SaltLength != opts.HashFunc().Size() {
		return "", fmt.Errorf("pss salt length %d: %w (only the hash length)", pss.SaltLength, ErrUnsupported)
	}
	return PSS, nil
}

// Sign signs digest, as crypto.Signer does: opts is the hash for ECDSA and
// PKCS#1 v1.5, or *rsa.PSSOptions for PSS. ECDSA signatures are ASN.1 DER.
// It has no context, so a caller that has one uses SignContext.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with the caller's context, so that a cancelled
// request stops waiting for an HSM session.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, fmt.Errorf("sign: %w: no hash given", ErrUnsupported)
	}
	scheme, err := SchemeFor(s.key.Type, opts)
	if err != nil {
		return nil, err
	}
	sigs, err := s.SignDigests(ctx, scheme, opts.HashFunc(), [][]byte{digest})
	if err != nil {
		return nil, err
	}
	return sigs[0], nil
}

// SignDigests signs every digest with one session, in order. Callers that
// want parallelism split a batch across calls (package signer does).
func (s *Signer) SignDigests(ctx context.Context, scheme Scheme, h crypto.Hash, digests [][]byte) ([][]byte, error) {
	if err := s.key.Type.CheckScheme(scheme); err != nil {
		return nil, err
	}
	for i, d := range digests {
		if err := CheckDigest(h, d); err != nil {
			return nil, fmt.Errorf("digest %d: %w", i, err)
		}
	}
	mech, err := mechanism(scheme, h)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(digests))
	k := s.ks
	err = k.pool.Do(ctx, func(ss *session) error {
		// A handle can go stale (a live key evicted by another goroutine, a
		// token object re-created); look it up again once.
		var err error
		for attempt := 0; attempt < 2; attempt++ {
			err = s.signOn(ctx, ss, mech, scheme, h, digests, out)
			if !isStaleHandle(err) {
				return err
			}
		}
		return err
	})
	if err != nil {
		k.m.signErr.Inc()
		return nil, fmt.Errorf("sign with key %s: %w", s.key.ID, err)
	}
	k.m.signOK.Add(float64(len(digests)))
	return out, nil
}

func isStaleHandle(err error) bool {
	return errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID)) ||
		errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID))
}

// signOn signs digests into out on session ss.
func (s *Signer) signOn(ctx context.Context, ss *session, mech []*pkcs11.Mechanism, scheme Scheme, h crypto.Hash, digests, out [][]byte) error {
	k := s.ks
	var (
		obj  pkcs11.ObjectHandle
		done = func() {}
	)
	if s.key.Mode == ModeWrapped {
		var err error
		obj, done, err = k.liveHandle(ss, s)
		if err != nil {
			return err
		}
	} else {
		if c := s.handle.Load(); c != nil && c.gen == ss.gen {
			obj = c.obj
		} else {
			var err error
			if obj, err = k.findPrivate(ctx, ss, s.cka); err != nil {
				return err
			}
			s.handle.Store(&cachedHandle{obj: obj, gen: ss.gen})
		}
	}
	defer done()
	var buf []byte
	for i, d := range digests {
		in := d
		if scheme == PKCS1v15 {
			buf = append(append(buf[:0], digestInfoPrefix[h]...), d...)
			in = buf
		}
		if err := k.p.SignInit(ss.h, mech, obj); err != nil {
			if isStaleHandle(err) {
				s.forget(obj)
			}
			return err
		}
		sig, err := k.p.Sign(ss.h, in)
		if err != nil {
			return err
		}
		if scheme == ECDSA {
			if sig, err = ecdsaDER(sig); err != nil {
				return err
			}
		}
		out[i] = sig
	}
	return nil
}

// forget drops a stale handle so the next call looks the key up again.
func (s *Signer) forget(obj pkcs11.ObjectHandle) {
	if s.key.Mode == ModeWrapped {
		s.ks.live.forget(s.key.ID, obj)
		return
	}
	if c := s.handle.Load(); c != nil && c.obj == obj {
		s.handle.CompareAndSwap(c, nil)
	}
}

// Signing mechanisms, built once: miekg/pkcs11 only reads them.
var (
	mechECDSA = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	mechPKCS1 = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
	mechPSS   = func() map[crypto.Hash][]*pkcs11.Mechanism {
		m := map[crypto.Hash][]*pkcs11.Mechanism{}
		for h, p := range pssParams {
			m[h] = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, p)}
		}
		return m
	}()
)

func mechanism(scheme Scheme, h crypto.Hash) ([]*pkcs11.Mechanism, error) {
	switch scheme {
	case ECDSA:
		return mechECDSA, nil
	case PKCS1v15:
		return mechPKCS1, nil
	case PSS:
		if m, ok := mechPSS[h]; ok {
			return m, nil
		}
		return nil, fmt.Errorf("pss with hash %v: %w", h, ErrUnsupported)
	}
	return nil, fmt.Errorf("scheme %q: %w", scheme, ErrUnsupported)
}

// ecdsaDER turns the r||s signature PKCS#11 returns into ASN.1 DER.
func ecdsaDER(rs []byte) ([]byte, error) {
	if len(rs) == 0 || len(rs)%2 != 0 {
		return nil, fmt.Errorf("ecdsa signature of odd length %d from token", len(rs))
	}
	n := len(rs) / 2
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(rs[:n]), new(big.Int).SetBytes(rs[n:])})
}
