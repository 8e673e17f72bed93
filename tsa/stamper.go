package tsa

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"

	"github.com/digitorus/timestamp"
)

// Stamper obtains a verified time-stamp token over a digest: a Client
// asking TSAs over HTTP, or the built-in Server in process.
type Stamper interface {
	Timestamp(ctx context.Context, h crypto.Hash, digest []byte) (*Token, error)
}

var (
	_ Stamper = (*Client)(nil)
	_ Stamper = (*Server)(nil)
)

// Timestamp issues a token in process, as the built-in TSA would over
// HTTP, and checks it like a client would (against the top of the
// configured chain), so that signatures made in process carry exactly
// what outside verifiers get.
func (s *Server) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) (*Token, error) {
	if len(digest) != h.Size() || h.Size() == 0 {
		return nil, fmt.Errorf("timestamp: %v digest of %d bytes", h, len(digest))
	}
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("timestamp: nonce: %w", err)
	}
	query, err := (&timestamp.Request{HashAlgorithm: h, HashedMessage: digest, Certificates: true, Nonce: nonce}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("timestamp: build query: %w", err)
	}
	reply, fail, err := s.Respond(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("timestamp: built-in TSA: %w: %w", ErrUnavailable, err)
	}
	if fail != FailNone {
		if fail == FailBadAlg {
			return nil, fmt.Errorf("timestamp: %w: %v", ErrUnsupportedHash, h)
		}
		_, err := ParseReply(reply)
		return nil, fmt.Errorf("timestamp: built-in TSA: %w", err)
	}
	der, err := ParseReply(reply)
	if err != nil {
		return nil, fmt.Errorf("timestamp: built-in TSA: %w: %w", ErrBadReply, err)
	}
	anchor := s.cfg.Cert
	if n := len(s.cfg.Chain); n > 0 {
		anchor = s.cfg.Chain[n-1]
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	tok, err := VerifyToken(der, VerifyOptions{Roots: roots, Hash: h, Digest: digest, Nonce: nonce})
	if err != nil {
		return nil, fmt.Errorf("timestamp: built-in TSA: %w: %w", ErrBadReply, err)
	}
	return tok, nil
}

// TokenDER adapts a Stamper to callers that want only the DER token, such
// as signer.TimestamperFunc for CAdES-B-T and PAdES-B-T.
func TokenDER(s Stamper) func(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
	return func(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
		tok, err := s.Timestamp(ctx, h, digest)
		if err != nil {
			return nil, err
		}
		return tok.DER, nil
	}
}
