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
	"github.com/firma-cloud/firma/policy"
)

// retryDelay is what a ResourceExhausted status suggests waiting: about
// the admission timeout's order of magnitude, short enough for interactive use.
const retryDelay = time.Second

// ErrorDomain is the domain of every google.rpc.ErrorInfo firmad returns.
const ErrorDomain = "firma.cloud"

// reasons names the ErrorInfo reason of the codes whose reason is not
// their own name: ERROR_REASON_<CODE> of firmav1.ErrorReason, else
// REGISTRY_ERROR_REASON_<CODE> of firmav1.RegistryErrorReason, is the rule
// (see reasonOf). The reasons are API: clients branch on them.
var reasons = map[string]string{
	"hsm_login_failed":       firmav1.ErrorReason_ERROR_REASON_HSM_UNAVAILABLE.String(),
	"keystore_closed":        firmav1.ErrorReason_ERROR_REASON_SHUTTING_DOWN.String(),
	"audit_log_closed":       firmav1.ErrorReason_ERROR_REASON_SHUTTING_DOWN.String(),
	"ca_audit_unavailable":   firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE.String(),
	"timestamp_failed":       firmav1.ErrorReason_ERROR_REASON_TSA_UNAVAILABLE.String(),
	"citizen_not_registered": firmav1.RegistryErrorReason_REGISTRY_ERROR_REASON_CITIZEN_NOT_FOUND.String(),
	"staff_unidentified":     firmav1.RegistryErrorReason_REGISTRY_ERROR_REASON_STAFF_REQUIRED.String(),
	"canceled":               firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED.String(),
	"deadline_exceeded":      firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED.String(),
	"not_found":              firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED.String(),
	// PortalService has always said INVALID_ARGUMENT for these.
	"portal_not_found": firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT.String(),
	"portal_exists":    firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT.String(),
}

// reasonOf is the ErrorInfo reason of an error: by the reasons table, or
// the enum value named for its code, or for a request the caller got wrong
// INVALID_ARGUMENT, or UNSPECIFIED.
func reasonOf(e *errs.Error) string {
	if r, ok := reasons[e.Code]; ok {
		return r
	}
	name := strings.ToUpper(e.Code)
	if v, ok := firmav1.ErrorReason_value["ERROR_REASON_"+name]; ok {
		return firmav1.ErrorReason(v).String()
	}
	if v, ok := firmav1.RegistryErrorReason_value["REGISTRY_ERROR_REASON_"+name]; ok {
		return firmav1.RegistryErrorReason(v).String()
	}
	switch e.Kind {
	case errs.Invalid, errs.TooLarge, errs.OutOfRange:
		return firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT.String()
	case errs.Internal:
		return firmav1.ErrorReason_ERROR_REASON_INTERNAL.String()
	}
	return firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED.String()
}

// shownWhole are the kinds whose whole error text is the status message:
// the caller's request or the subject's state, described by our own
// wrapping (which names the digest, field or rule at fault and never
// carries a secret). Other kinds show only the Detail of the *errs.Error
// found, which was written for people where it was created.
var shownWhole = map[errs.Kind]bool{errs.Invalid: true, errs.TooLarge: true, errs.OutOfRange: true,
	errs.FailedPrecondition: true, errs.Unprocessable: true}

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
	e := errs.As(err)
	if e == nil {
		var pr *policy.Refusal
		if errors.As(err, &pr) {
			// policy is pure and knows no kinds: a refusal is Denied, its
			// rule the code.
			e = &errs.Error{Kind: errs.Denied, Code: pr.Rule, Detail: pr.Reason, Err: err}
		}
	}
	if e == nil || e.Kind == errs.Internal {
		log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("method", method), slog.Any("err", err))
		return newStatus(codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", meta)
	}
	msg := e.Detail
	if shownWhole[e.Kind] {
		msg = err.Error()
	}
	return fromErrs(ctx, log, method, e, msg, err, meta)
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
	errs.OutOfRange:         codes.OutOfRange,
	errs.Internal:           codes.Internal,
}

// GRPCCode is the gRPC code of an error of kind k.
func GRPCCode(k errs.Kind) codes.Code {
	if c, ok := grpcCodes[k]; ok {
		return c
	}
	return codes.Internal
}

// fromErrs is the status of an *errs.Error: its kind's code, message msg,
// the reason of its code (reasonOf), its field as a BadRequest violation
// and its RetryAfter as RetryInfo.
func fromErrs(ctx context.Context, log *slog.Logger, method string, e *errs.Error, msg string, err error, meta []string) error {
	c := GRPCCode(e.Kind)
	lvl := slog.LevelWarn
	if c == codes.Unavailable || c == codes.ResourceExhausted {
		lvl = slog.LevelError
	}
	log.LogAttrs(ctx, lvl, "request failed", slog.String("method", method), slog.String("code", c.String()),
		slog.String("reason", e.Code), slog.Any("err", err))
	st := status.New(c, msg)
	info := &errdetails.ErrorInfo{Reason: reasonOf(e), Domain: ErrorDomain}
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
