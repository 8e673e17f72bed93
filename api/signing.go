package api

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
)

// MaxDigests is the most digests one SignDigests call may carry: the
// core's limit, enough for any batch a portal sends and small enough that
// one call cannot hold every HSM session for long.
const MaxDigests = signer.DefaultMaxBatch

// SigningService implements firmav1.SigningServiceServer on the signing
// service: every call is one key.activated and one key.used record.
type SigningService struct {
	firmav1.UnimplementedSigningServiceServer
	sg  *signing.Service
	log *slog.Logger
}

var _ firmav1.SigningServiceServer = (*SigningService)(nil)

// NewSigningService returns the signing RPC service, or an error without
// a signing service: operators' signatures are audited like any other.
func NewSigningService(sg *signing.Service, log *slog.Logger) (*SigningService, error) {
	if sg == nil {
		return nil, errors.New("api: SigningService needs the signing service")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SigningService{sg: sg, log: log}, nil
}

var hashes = map[firmav1.HashAlgorithm]crypto.Hash{
	firmav1.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED: crypto.SHA256,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256:      crypto.SHA256,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384:      crypto.SHA384,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA512:      crypto.SHA512,
}

// schemes maps the request's scheme; UNSPECIFIED is "", which the grant
// resolves to the key type's default.
var schemes = map[firmav1.SignatureScheme]keystore.Scheme{
	firmav1.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED:  "",
	firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA:        keystore.ECDSA,
	firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15: keystore.PKCS1v15,
	firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS:      keystore.PSS,
}

// SignDigests signs every digest with the key, all or nothing. Beyond the
// length check and the digests' names in the two audit records, it does
// no work per digest, so a batch of 64 costs little more than the HSM's
// signatures and two audit appends.
func (s *SigningService) SignDigests(ctx context.Context, req *firmav1.SignDigestsRequest) (*firmav1.SignDigestsResponse, error) {
	return s.signDigests(ctx, "SignDigests", req)
}

// SignDigestStream answers each request message as SignDigests would,
// in order, on one stream: a caller sending digests one by one pays the
// call's fixed cost (HTTP/2 stream, headers, authentication, interceptors)
// once rather than per digest. The first message names the key, scheme
// and hash; a later one that leaves them unset uses the first's, and one
// that names others is refused. The first error ends the stream.
func (s *SigningService) SignDigestStream(stream firmav1.SigningService_SignDigestStreamServer) error {
	const method = "SignDigestStream"
	ctx := stream.Context()
	var first *firmav1.SignDigestsRequest
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if first == nil {
			first = req
		} else if err := inherit(req, first); err != nil {
			return err
		}
		resp, err := s.signDigests(ctx, method, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// inherit fills req's unset key, scheme and hash from the stream's first
// message; set to anything else, they are refused.
func inherit(req, first *firmav1.SignDigestsRequest) error {
	if req.KeyId == "" {
		req.KeyId = first.KeyId
	} else if req.KeyId != first.KeyId {
		return invalidArg("key_id", "one stream signs with one key: the first message's")
	}
	if req.Scheme == firmav1.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED {
		req.Scheme = first.Scheme
	} else if req.Scheme != first.Scheme {
		return invalidArg("scheme", "one stream uses one scheme: the first message's")
	}
	if req.Hash == firmav1.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED {
		req.Hash = first.Hash
	} else if req.Hash != first.Hash {
		return invalidArg("hash", "one stream uses one hash: the first message's")
	}
	return nil
}

func (s *SigningService) signDigests(ctx context.Context, method string, req *firmav1.SignDigestsRequest) (*firmav1.SignDigestsResponse, error) {
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
	docs := make([]audit.Document, n)
	for i, d := range req.GetDigests() {
		if len(d) != h.Size() {
			return nil, invalidArg(fmt.Sprintf("digests[%d]", i),
				fmt.Sprintf("%d bytes, a %v digest is %d bytes", len(d), h, h.Size()))
		}
		docs[i] = audit.Digest(h, d)
	}
	scheme, ok := schemes[req.GetScheme()]
	if !ok {
		return nil, invalidArg("scheme", fmt.Sprintf("unknown signature scheme %d", req.GetScheme()))
	}
	op := Operator(ctx)
	if op == "" {
		// Only an unauthenticated server gets here; the record must name
		// who signed.
		return nil, unauthenticated()
	}
	g, err := s.sg.Authorise(ctx, signing.Request{Purpose: signing.PurposeOperator, Actor: audit.Actor{Role: audit.RoleAdmin, ID: op},
		KeyID: req.GetKeyId(), Documents: docs, Details: map[string]string{"scheme": req.GetScheme().String()},
		Evidence: signing.OperatorCall(op)})
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
	}
	sigs, err := g.SignDigests(ctx, scheme, h, req.GetDigests())
	if err != nil {
		if rerr := g.Release(ctx, signing.Result{Documents: docs, Scheme: scheme, Failure: "signing failed"}); rerr != nil {
			s.log.ErrorContext(ctx, "failed signature not recorded", "key_id", req.GetKeyId(), "err", rerr)
		}
		return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
	}
	if err := g.Release(ctx, signing.Result{Documents: docs, Scheme: scheme, Format: "raw"}); err != nil {
		// Made but unrecorded: it must not be handed out.
		return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
	}
	return &firmav1.SignDigestsResponse{Signatures: sigs}, nil
}
