package api

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
)

// MaxDigests is the most digests one SignDigests call may carry: the
// core's limit, enough for any batch a portal sends and small enough that
// one call cannot hold every HSM session for long.
const MaxDigests = signer.DefaultMaxBatch

// Core is what the signing RPC needs from the signing core; *signer.Core
// is the implementation.
type Core interface {
	Sign(ctx context.Context, r signer.Request) ([][]byte, error)
}

var _ Core = (*signer.Core)(nil)

// SigningService implements firmav1.SigningServiceServer on the signing core.
type SigningService struct {
	firmav1.UnimplementedSigningServiceServer
	ks   *keystore.Keystore
	core Core
	log  *slog.Logger
}

var _ firmav1.SigningServiceServer = (*SigningService)(nil)

// NewSigningService returns the signing service. ks is used only to find a
// key's type when a request leaves the scheme unspecified.
func NewSigningService(ks *keystore.Keystore, core Core, log *slog.Logger) *SigningService {
	return &SigningService{ks: ks, core: core, log: log}
}

var hashes = map[firmav1.HashAlgorithm]crypto.Hash{
	firmav1.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED: crypto.SHA256,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256:      crypto.SHA256,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384:      crypto.SHA384,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA512:      crypto.SHA512,
}

var schemes = map[firmav1.SignatureScheme]keystore.Scheme{
	firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA:        keystore.ECDSA,
	firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15: keystore.PKCS1v15,
	firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS:      keystore.PSS,
}

// SignDigests signs every digest with the key, all or nothing. It does no
// work per digest beyond the length check, so a batch of 64 costs little
// more than the HSM's signatures.
func (s *SigningService) SignDigests(ctx context.Context, req *firmav1.SignDigestsRequest) (*firmav1.SignDigestsResponse, error) {
	const method = "SignDigests"
	if err := checkKeyID(req.GetKeyId()); err != nil {
		return nil, err
	}
	h, ok := hashes[req.GetHash()]
	if !ok {
		return nil, invalidArg("hash", fmt.Sprintf("unknown hash algorithm %d", req.GetHash()))
	}
	n := len(req.GetDigests())
	switch {
	case n == 0:
		return nil, invalidArg("digests", "at least one digest is required")
	case n > MaxDigests:
		return nil, invalidArg("digests", fmt.Sprintf("%d digests, at most %d per call", n, MaxDigests))
	}
	for i, d := range req.GetDigests() {
		if len(d) != h.Size() {
			return nil, invalidArg(fmt.Sprintf("digests[%d]", i),
				fmt.Sprintf("%d bytes, a %v digest is %d bytes", len(d), h, h.Size()))
		}
	}
	var scheme keystore.Scheme
	if req.GetScheme() == firmav1.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED {
		// The keystore caches signers, so this reads neither store nor token
		// once the key has been used.
		sg, err := s.ks.Signer(ctx, req.GetKeyId())
		if err != nil {
			return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
		}
		if scheme, err = keystore.SchemeFor(sg.Key().Type, nil); err != nil {
			return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
		}
	} else if scheme, ok = schemes[req.GetScheme()]; !ok {
		return nil, invalidArg("scheme", fmt.Sprintf("unknown signature scheme %d", req.GetScheme()))
	}
	sigs, err := s.core.Sign(ctx, signer.Request{KeyID: req.GetKeyId(), Scheme: scheme, Hash: h, Digests: req.GetDigests()})
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
	}
	return &firmav1.SignDigestsResponse{Signatures: sigs}, nil
}
