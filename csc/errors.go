package csc

import (
	"github.com/firma-cloud/firma/errs"
)

// Error codes of the CSC error body. The service's refusals are
// *errs.Error values with these codes; the CSC edge (api/rest/cschttp)
// takes the HTTP status from the kind, in its one table.
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidOTP     = "invalid_otp"
	CodeAccessDenied   = "access_denied"
	CodeInvalidToken   = "invalid_token"
	CodeServerError    = "server_error"
	CodeUnavailable    = "temporarily_unavailable"
)

// Codes lists every CSC error code: the edge sends an error's own code when
// it is one of these, and its kind's CSC code otherwise.
var Codes = []string{CodeInvalidRequest, CodeInvalidOTP, CodeAccessDenied, CodeInvalidToken, CodeServerError, CodeUnavailable}

// Sentinels for errors.Is: they match any refusal with the same code.
var (
	ErrInvalidRequest = errs.Sentinel(errs.Invalid, CodeInvalidRequest, "invalid request")
	ErrInvalidOTP     = errs.Sentinel(errs.Invalid, CodeInvalidOTP, "invalid OTP")
	ErrAccessDenied   = errs.Sentinel(errs.Denied, CodeAccessDenied, "access denied")
	ErrInvalidToken   = errs.Sentinel(errs.Unauthenticated, CodeInvalidToken, "invalid token")
)

func invalid(format string, args ...any) *errs.Error {
	return errs.Newf(errs.Invalid, CodeInvalidRequest, format, args...)
}

// invalidOTP is a code that is wrong, expired, spent or never sent: a
// client mistake, told apart from other bad requests by its CSC code.
func invalidOTP(format string, args ...any) *errs.Error {
	return errs.Newf(errs.Invalid, CodeInvalidOTP, format, args...)
}

func denied(format string, args ...any) *errs.Error {
	return errs.Newf(errs.Denied, CodeAccessDenied, format, args...)
}

func tooMany(detail string) *errs.Error { return errs.New(errs.TooMany, CodeInvalidRequest, detail) }

func conflict(detail string) *errs.Error { return errs.New(errs.Conflict, CodeInvalidRequest, detail) }

func internal(err error) *errs.Error {
	return &errs.Error{Kind: errs.Internal, Code: CodeServerError, Detail: "internal error", Err: err}
}

func unavailable(desc string, err error) *errs.Error {
	return &errs.Error{Kind: errs.Unavailable, Code: CodeUnavailable, Detail: desc, Err: err}
}

// errExplicitOff answers the explicit path's methods when config turned
// the path off.
func errExplicitOff(method string) *errs.Error {
	return errs.Newf(errs.FailedPrecondition, CodeInvalidRequest,
		"%s is turned off on this service (csc.explicit_authorize): authorise credentials with OAuth 2.0", method)
}
