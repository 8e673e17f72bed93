package transaction

import (
	"bytes"
	"context"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
)

// upgradeXAdES raises the one XAdES signature of req.Signature with
// xades.Extend, which verifies it first and writes the new unsigned
// properties into its bytes.
func (s *Service) upgradeXAdES(ctx context.Context, req UpgradeRequest, h crypto.Hash) ([]byte, error) {
	opt := xades.Options{Level: xades.Level(req.Level), Hash: h, Timestamper: s.opt.Timestamper}
	if s.opt.Validation != nil {
		opt.Validation = s.opt.Validation.Batch()
	}
	var resolve xades.Resolver
	if req.Content != nil {
		resolve = func(string) ([]byte, bool) { return req.Content, true }
	}
	out, err := xades.Extend(ctx, req.Signature, resolve, opt)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, ltv.ErrRevoked):
		return nil, invalid("signature", "a certificate of the signature is revoked: %v", err)
	case errors.Is(err, ltv.ErrChain):
		return nil, invalid("signature", "%v", err)
	case errors.Is(err, xades.ErrNoContent):
		return nil, invalid("content", "%v: give the document the detached signature refers to", err)
	case errors.Is(err, xades.ErrTimestamp), errors.Is(err, xades.ErrValidation):
		return nil, fail(CodeUnavailable, "the timestamp authority or a revocation source is unavailable; retry", err)
	}
	// Not XML, not XAdES, a signature that does not verify, an incomplete
	// chain: the request's signature is at fault.
	return nil, invalid("signature", "%v", err)
}

// UpgradeRequest asks to raise a CAdES, PAdES or XAdES signature, made
// here or elsewhere, to a higher level.
type UpgradeRequest struct {
	// Signature is a DER CMS SignedData with one signer (CAdES), a
	// signed PDF (PAdES), or XML with one XAdES signature.
	Signature []byte
	Digest    []byte       // CAdES: the signed content's digest under Hash
	Hash      string       // sha256 (default), sha384 or sha512: the signature's digest algorithm (CAdES), the timestamps' (XAdES)
	Level     signer.Level // B-T, B-LT or B-LTA
	// Content is, for an XAdES signature with a detached reference, the
	// document it refers to: checked before the upgrade, and covered by
	// a B-LTA archive timestamp.
	Content []byte
	// Format is cades, pades or xades; empty tells them apart by the
	// content (a PDF starts with %PDF-, XML with <).
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
	isXML := xades.IsXML(req.Signature)
	if !isXML {
		switch req.Format {
		case "":
			req.Format = signer.FormatCAdES
			if bytes.HasPrefix(req.Signature, []byte("%PDF-")) {
				req.Format = signer.FormatPAdES
			}
		case signer.FormatCAdES, signer.FormatPAdES:
		default:
			return nil, invalid("format", "%q: only cades, pades and xades signatures are upgraded", req.Format)
		}
	}
	// An attached signature carries its content, which gives the digest.
	if !isXML && req.Format == signer.FormatCAdES && len(req.Digest) != h.Size() && (len(req.Digest) != 0 || !attached(req.Signature)) {
		return nil, invalid("digest", "%d bytes, want %d for %s", len(req.Digest), h.Size(), req.Hash)
	}
	if err := s.graceOver(req, isXML); err != nil {
		return nil, err
	}
	if isXML {
		return s.upgradeXAdES(ctx, req, h)
	}
	opt := signer.Options{Level: req.Level, Hash: h, Timestamper: s.opt.Timestamper}
	if s.opt.Validation != nil {
		opt.Validation = s.opt.Validation.Batch()
	}
	var out []byte
	if req.Format == signer.FormatPAdES {
		out, err = signer.ExtendPAdES(ctx, req.Signature, opt)
	} else {
		var digest []byte
		if len(req.Digest) > 0 {
			digest = req.Digest
		}
		out, err = signer.ExtendCAdES(ctx, req.Signature, digest, opt)
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
func (s *Service) graceOver(req UpgradeRequest, isXML bool) error {
	if req.Level.Rank() < 2 || s.opt.UpgradeGrace <= 0 {
		return nil
	}
	var tok []byte
	var err error
	switch {
	case isXML:
		tok, err = xades.SignatureTimestamp(req.Signature, xades.Limits{})
	case req.Format == signer.FormatPAdES:
		tok, err = signer.PAdESSignatureTimestamp(req.Signature)
	default:
		tok, err = signer.SignatureTimestamp(req.Signature)
	}
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

// attached reports whether sig is a CMS SignedData with its content inside.
func attached(sig []byte) bool {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(sig, &ci); err != nil {
		return false
	}
	var sd struct {
		Version int
		Algs    asn1.RawValue
		Encap   struct {
			Type    asn1.ObjectIdentifier
			Content asn1.RawValue `asn1:"optional,explicit,tag:0"`
		}
	}
	_, err := asn1.Unmarshal(ci.Content.Bytes, &sd)
	return err == nil && len(sd.Encap.Content.FullBytes) > 0
}
