package api

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/verify"
)

// MaxVerifyBytes bounds a document sent for verification over REST; gRPC
// callers are bounded by the server's receive limit.
const MaxVerifyBytes = 64 << 20

func init() {
	// Verification is public, as relying parties (courts, other
	// administrations, citizens) hold no operator credentials, and the
	// REST route is open too. Revocation is fetched only for chains that
	// end at a configured root, so a caller cannot make the service fetch
	// URLs of its choosing.
	for _, m := range firmav1.VerifyService_ServiceDesc.Methods {
		publicMethods["/"+firmav1.VerifyService_ServiceDesc.ServiceName+"/"+m.MethodName] = true
	}
}

// VerifyService implements firmav1.VerifyServiceServer on a verifier.
type VerifyService struct {
	firmav1.UnimplementedVerifyServiceServer
	get func(context.Context) (*verify.Verifier, error)
	log *slog.Logger
}

var _ firmav1.VerifyServiceServer = (*VerifyService)(nil)

// NewVerifyService returns the verification service on a verifier.
func NewVerifyService(v *verify.Verifier, log *slog.Logger) *VerifyService {
	return NewLazyVerifyService(func(context.Context) (*verify.Verifier, error) { return v, nil }, log)
}

// NewLazyVerifyService returns the verification service on the verifier
// get returns for each call, for trust anchors that appear after start-up
// (the built-in CA before `firmactl ca init`). An error from get should
// wrap ErrVerifierUnavailable.
func NewLazyVerifyService(get func(context.Context) (*verify.Verifier, error), log *slog.Logger) *VerifyService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VerifyService{get: get, log: log}
}

// ErrVerifierUnavailable means no trust anchors are configured yet.
var ErrVerifierUnavailable = errs.Sentinel(errs.Unavailable, "verifier_unavailable", "no trust anchors configured yet")

// Verify checks the signatures of one document.
func (s *VerifyService) Verify(ctx context.Context, req *firmav1.VerifyRequest) (*firmav1.VerifyResponse, error) {
	const method = "Verify"
	sig := req.GetSignature()
	if len(sig) == 0 {
		return nil, invalidArg("signature", "is required")
	}
	v, err := s.get(ctx)
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err)
	}
	var r *verify.Report
	switch {
	case bytes.HasPrefix(sig, []byte("%PDF-")):
		if req.GetSigned() != nil {
			return nil, invalidArg("content", "a PDF carries what it signs; send no content or digest")
		}
		r, err = v.PDF(ctx, sig)
	case bytes.HasPrefix(sig, []byte("PK\x03\x04")):
		if req.GetSigned() != nil {
			return nil, invalidArg("content", "an ASiC container carries what it signs; send no content or digest")
		}
		r, err = v.ASiC(ctx, sig)
	case xades.IsXML(sig):
		switch signed := req.GetSigned().(type) {
		case *firmav1.VerifyRequest_Content:
			r, err = v.XAdES(ctx, sig, signed.Content)
		case *firmav1.VerifyRequest_Digest:
			return nil, invalidArg("digest", "an XML signature is verified against its detached content, not a digest")
		default:
			r, err = v.XAdES(ctx, sig, nil)
		}
	default:
		if b, _ := pem.Decode(sig); b != nil {
			sig = b.Bytes
		}
		switch signed := req.GetSigned().(type) {
		case *firmav1.VerifyRequest_Content:
			r, err = v.CAdES(ctx, sig, bytes.NewReader(signed.Content))
		case *firmav1.VerifyRequest_Digest:
			h, ok := hashes[req.GetDigestHash()]
			if !ok {
				return nil, invalidArg("digest_hash", fmt.Sprintf("unknown hash algorithm %d", req.GetDigestHash()))
			}
			r, err = v.CAdESDigest(ctx, sig, h, signed.Digest)
		default:
			r, err = v.CAdES(ctx, sig, nil)
		}
	}
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err)
	}
	return reportProto(r), nil
}

var verdicts = map[verify.Verdict]firmav1.Verdict{
	verify.Valid:                firmav1.Verdict_VERDICT_VALID,
	verify.Invalid:              firmav1.Verdict_VERDICT_INVALID,
	verify.VerdictIndeterminate: firmav1.Verdict_VERDICT_INDETERMINATE,
}

var checkStatuses = map[verify.Status]firmav1.CheckStatus{
	verify.Passed:        firmav1.CheckStatus_CHECK_STATUS_PASSED,
	verify.Failed:        firmav1.CheckStatus_CHECK_STATUS_FAILED,
	verify.Indeterminate: firmav1.CheckStatus_CHECK_STATUS_INDETERMINATE,
}

func reportProto(r *verify.Report) *firmav1.VerifyResponse {
	out := &firmav1.VerifyResponse{Verdict: verdicts[r.Verdict]}
	ts := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	for _, s := range r.Signatures {
		sr := &firmav1.SignatureReport{
			Format: s.Format, Level: s.Level, Field: s.Field, Verdict: verdicts[s.Verdict],
			Signer: s.Signer, SignerSerial: s.SignerSerial, Issuer: s.Issuer, CertSha256: s.CertSHA256,
			DigestAlgorithm: s.DigestAlg, SigningTime: ts(s.SigningTime), TimestampTime: ts(s.TimestampTime),
			Tsa: s.TSA, ValidationTime: ts(s.ValidationTime), CoversWholeDocument: s.CoversWholeDocument,
		}
		for _, c := range s.Checks {
			sr.Checks = append(sr.Checks, &firmav1.Check{Name: c.Name, Status: checkStatuses[c.Status], Reason: c.Reason})
		}
		sr.CountersignatureOf = int32(s.CounterSignatureOf)
		if p := s.Policy; p != nil {
			sr.Policy = &firmav1.SignaturePolicy{Oid: p.OID, HashAlgorithm: p.HashAlgorithm, Hash: p.Hash, Uri: p.URI, Name: p.Name}
		}
		out.Signatures = append(out.Signatures, sr)
	}
	return out
}
