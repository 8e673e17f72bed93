package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

// retryDelay is what a ResourceExhausted status suggests waiting: about
// the admission timeout's order of magnitude, short enough for interactive use.
const retryDelay = time.Second

// ErrorDomain is the domain of every google.rpc.ErrorInfo firmad returns.
const ErrorDomain = "firma.cloud"

// mapping is how one kind of error leaves the service.
type mapping struct {
	sentinel error
	code     codes.Code
	reason   firmav1.ErrorReason
	msg      string // constant client-facing message
	detail   bool   // append the error text: it names the caller's mistake and holds no secret
}

// mappings is checked in order; the first sentinel that matches wins.
var mappings = []mapping{
	{keystore.ErrKeyNotFound, codes.NotFound, firmav1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND, "key not found", false},
	// Not found of whatever was asked: the keystore reports its keys as
	// ErrKeyNotFound above, so a bare store miss is not a key.
	{store.ErrNotFound, codes.NotFound, firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED, "not found", false},
	{keystore.ErrKeyDestroyed, codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_KEY_DESTROYED, "key destroyed", false},
	{keystore.ErrDigestLength, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_DIGEST_LENGTH, "wrong digest length", true},
	{signer.ErrBatch, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "bad batch", true},
	{keystore.ErrUnsupported, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_UNSUPPORTED, "unsupported", true},
	{keystore.ErrBusy, codes.ResourceExhausted, firmav1.ErrorReason_ERROR_REASON_HSM_BUSY, "all HSM sessions busy, retry later", false},
	{keystore.ErrTokenUnavailable, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_HSM_UNAVAILABLE, "HSM unavailable", false},
	{keystore.ErrLogin, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_HSM_UNAVAILABLE, "HSM unavailable", false},
	{keystore.ErrClosed, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_SHUTTING_DOWN, "service shutting down", false},
	{context.Canceled, codes.Canceled, firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED, "request canceled", false},
	{context.DeadlineExceeded, codes.DeadlineExceeded, firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED, "deadline exceeded", false},
}

// extraMappings lets packages built later (signer, policy, ...) add their
// sentinels without editing this file's table: call AddErrorMapping from an
// init function in a file of this package.
var extraMappings []mapping

// AddErrorMapping makes errors matching sentinel leave with the given code,
// reason and constant message; detail appends the error text, which must
// then never carry a secret. Call it only from init.
func AddErrorMapping(sentinel error, code codes.Code, reason firmav1.ErrorReason, msg string, detail bool) {
	extraMappings = append(extraMappings, mapping{sentinel, code, reason, msg, detail})
}

// toStatus turns err into a gRPC status error with an ErrorInfo detail.
// Client errors are logged at Warn, server errors at Error with their cause;
// the client sees the cause only where it describes its own mistake.
// meta (key/value pairs, e.g. "key_id", id) goes into ErrorInfo.metadata.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error, meta ...string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already mapped, e.g. by invalidArg
	}
	m, ok := find(err)
	if !ok {
		if e := errs.As(err); e != nil && e.Kind != errs.Internal {
			return fromErrs(ctx, log, method, e, meta)
		}
		log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("method", method), slog.Any("err", err))
		return newStatus(codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", meta)
	}
	msg := m.msg
	if m.detail {
		msg = msg + ": " + err.Error()
	}
	lvl := slog.LevelWarn
	if m.code == codes.Unavailable || m.code == codes.ResourceExhausted {
		lvl = slog.LevelError
	}
	log.LogAttrs(ctx, lvl, "request failed", slog.String("method", method), slog.String("code", m.code.String()), slog.Any("err", err))
	st := newStatus(m.code, m.reason, msg, meta)
	if m.code == codes.ResourceExhausted {
		// Tell clients how long to back off rather than letting them spin.
		if s, ok := status.FromError(st); ok {
			if s2, err := s.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)}); err == nil {
				return s2.Err()
			}
		}
	}
	return st
}

// grpcCodes is the one table from an error's kind to its gRPC code.
var grpcCodes = map[errs.Kind]codes.Code{
	errs.Invalid:            codes.InvalidArgument,
	errs.TooLarge:           codes.InvalidArgument,
	errs.NotFound:           codes.NotFound,
	errs.Conflict:           codes.AlreadyExists,
	errs.FailedPrecondition: codes.FailedPrecondition,
	errs.Unprocessable:      codes.FailedPrecondition,
	errs.Gone:               codes.FailedPrecondition,
	errs.Denied:             codes.PermissionDenied,
	errs.Unauthenticated:    codes.Unauthenticated,
	errs.TooMany:            codes.ResourceExhausted,
	errs.Unavailable:        codes.Unavailable,
	errs.Canceled:           codes.Canceled,
	errs.Timeout:            codes.DeadlineExceeded,
	errs.Internal:           codes.Internal,
}

// GRPCCode is the gRPC code of an error of kind k.
func GRPCCode(k errs.Kind) codes.Code {
	if c, ok := grpcCodes[k]; ok {
		return c
	}
	return codes.Internal
}

// fromErrs is the status of an *errs.Error: its kind's code, its code as
// the ErrorInfo reason (the ErrorReason of that name when the enum has
// one, else the code itself), its field as a BadRequest violation and its
// RetryAfter as RetryInfo.
func fromErrs(ctx context.Context, log *slog.Logger, method string, e *errs.Error, meta []string) error {
	c := GRPCCode(e.Kind)
	lvl := slog.LevelWarn
	if c == codes.Unavailable || c == codes.ResourceExhausted || c == codes.Internal {
		lvl = slog.LevelError
	}
	log.LogAttrs(ctx, lvl, "request failed", slog.String("method", method), slog.String("code", e.Code), slog.Any("err", e))
	if c == codes.Internal {
		return newStatus(codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", meta)
	}
	reason := e.Code
	if v, ok := firmav1.ErrorReason_value["ERROR_REASON_"+strings.ToUpper(e.Code)]; ok {
		reason = firmav1.ErrorReason(v).String()
	}
	st := status.New(c, e.Detail)
	info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}
	if len(meta) > 1 || e.Field != "" {
		info.Metadata = map[string]string{}
		for i := 0; i+1 < len(meta); i += 2 {
			info.Metadata[meta[i]] = meta[i+1]
		}
		if e.Field != "" {
			info.Metadata["field"] = e.Field
		}
	}
	details := []protoadapt.MessageV1{info}
	if e.Field != "" {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: e.Field, Description: e.Detail}}})
	}
	if c == codes.ResourceExhausted {
		wait := e.RetryAfter
		if wait <= 0 {
			wait = retryDelay
		}
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(wait)})
	}
	if s, err := st.WithDetails(details...); err == nil {
		return s.Err()
	}
	return st.Err()
}

func find(err error) (mapping, bool) {
	for _, tbl := range [][]mapping{extraMappings, mappings} {
		for _, m := range tbl {
			if errors.Is(err, m.sentinel) {
				return m, true
			}
		}
	}
	return mapping{}, false
}

func newStatus(code codes.Code, reason firmav1.ErrorReason, msg string, meta []string) error {
	st := status.New(code, msg)
	info := &errdetails.ErrorInfo{Reason: reason.String(), Domain: ErrorDomain}
	if len(meta) > 1 {
		info.Metadata = make(map[string]string, len(meta)/2)
		for i := 0; i+1 < len(meta); i += 2 {
			info.Metadata[meta[i]] = meta[i+1]
		}
	}
	if s, err := st.WithDetails(info); err == nil {
		return s.Err()
	}
	return st.Err()
}

// invalidArg is the error for a malformed request field, naming it in the
// message, in ErrorInfo metadata and in a BadRequest field violation.
func invalidArg(field, problem string) error {
	st := status.New(codes.InvalidArgument, field+": "+problem)
	s, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT.String(), Domain: ErrorDomain,
			Metadata: map[string]string{"field": field}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: problem}}},
	)
	if err != nil {
		return st.Err()
	}
	return s.Err()
}

// unauthenticated is the one error an anonymous or unknown caller sees; it
// does not say which credential was wrong.
func unauthenticated() error {
	return newStatus(codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED,
		"an operator bearer token or client certificate is required", nil)
}

// Reason returns the ErrorInfo reason of a status error from firmad, or "".
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == ErrorDomain {
			return info.Reason
		}
	}
	return ""
}
