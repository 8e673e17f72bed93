package transaction

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
)

// UpgradeRequest asks to raise a detached CAdES signature or a signed
// PDF, made here or elsewhere, to a higher level.
type UpgradeRequest struct {
	// Signature is a DER CMS SignedData with one signer (CAdES) or a
	// signed PDF (PAdES).
	Signature []byte
	Digest    []byte       // CAdES: the signed content's digest under Hash
	Hash      string       // sha256 (default), sha384 or sha512: the signature's digest algorithm
	Level     signer.Level // B-T, B-LT or B-LTA
	// Format is cades or pades; empty tells them apart by the content (a
	// PDF starts with %PDF-).
	Format signer.Format
}

// Upgrade returns the signature raised to req.Level: a signature
// timestamp when it has none, the validation material of its chains, an
// archive timestamp (again, renewing it, when there is one). No key is
// used and nothing is stored; the portal keeps the result.
func (s *Service) Upgrade(ctx context.Context, req UpgradeRequest) ([]byte, error) {
	if req.Hash == "" {
		req.Hash = "sha256"
	}
	_, h, err := ParseHash(req.Hash)
	if err != nil {
		return nil, invalid("hash", "%v", err)
	}
	switch req.Level {
	case signer.LevelT, signer.LevelLT, signer.LevelLTA:
	default:
		return nil, invalid("level", "%q: want B-T, B-LT or B-LTA", req.Level)
	}
	if s.opt.Timestamper == nil || (req.Level.Rank() >= 2 && s.opt.Validation == nil) {
		return nil, invalid("level", "%s needs a timestamp authority and validation material gathering, and they are not configured", req.Level)
	}
	switch req.Format {
	case "":
		req.Format = signer.FormatCAdES
		if bytes.HasPrefix(req.Signature, []byte("%PDF-")) {
			req.Format = signer.FormatPAdES
		}
	case signer.FormatCAdES, signer.FormatPAdES:
	default:
		return nil, invalid("format", "%q: only cades and pades signatures are upgraded", req.Format)
	}
	if req.Format == signer.FormatCAdES && len(req.Digest) != h.Size() {
		return nil, invalid("digest", "%d bytes, want %d for %s", len(req.Digest), h.Size(), req.Hash)
	}
	if err := s.graceOver(req); err != nil {
		return nil, err
	}
	opt := signer.Options{Level: req.Level, Hash: h, Timestamper: s.opt.Timestamper}
	if s.opt.Validation != nil {
		opt.Validation = s.opt.Validation.Batch()
	}
	var out []byte
	if req.Format == signer.FormatPAdES {
		out, err = signer.ExtendPAdES(ctx, req.Signature, opt)
	} else {
		out, err = signer.ExtendCAdES(ctx, req.Signature, req.Digest, opt)
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, ltv.ErrRevoked):
		return nil, invalid("signature", "a certificate of the signature is revoked: %v", err)
	case errors.Is(err, signer.ErrFormat), errors.Is(err, signer.ErrHash), errors.Is(err, signer.ErrFormatDigest), errors.Is(err, signer.ErrPDF):
		return nil, invalid("signature", "%v", err)
	case errors.Is(err, ltv.ErrChain):
		return nil, invalid("signature", "%v", err)
	}
	return nil, fail(CodeUnavailable, "the timestamp authority or a revocation source is unavailable; retry", err)
}

// graceOver refuses B-LT and B-LTA until UpgradeGrace has passed since
// the signature timestamp, so that a revocation made before the signature
// had time to reach the OCSP responders and CRLs that are asked.
func (s *Service) graceOver(req UpgradeRequest) error {
	if req.Level.Rank() < 2 || s.opt.UpgradeGrace <= 0 {
		return nil
	}
	signatureTimestamp := signer.SignatureTimestamp
	if req.Format == signer.FormatPAdES {
		signatureTimestamp = signer.PAdESSignatureTimestamp
	}
	tok, err := signatureTimestamp(req.Signature)
	if err != nil {
		return invalid("signature", "%v", err)
	}
	if tok == nil {
		return &Error{Code: CodeWrongState, Field: "level", Message: fmt.Sprintf(
			"the signature has no timestamp: raise it to B-T first, and to %s once %s have passed", req.Level, s.opt.UpgradeGrace)}
	}
	ts, err := cmsparse.Timestamp(tok)
	if err != nil {
		return invalid("signature", "signature timestamp: %v", err)
	}
	if ready := ts.Time.Add(s.opt.UpgradeGrace); s.now().Before(ready) {
		return &Error{Code: CodeWrongState, Field: "level", Message: fmt.Sprintf(
			"too early for %s: revocation data is taken from %s, the grace period (%s) after the signature timestamp",
			req.Level, ready.UTC().Format(time.RFC3339), s.opt.UpgradeGrace)}
	}
	return nil
}
