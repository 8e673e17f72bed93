package csc

import (
	"fmt"
	"net/http"

	"github.com/firma-cloud/firma/errs"
)

// Error codes of the CSC error body.
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidOTP     = "invalid_otp"
	CodeAccessDenied   = "access_denied"
	CodeInvalidToken   = "invalid_token"
	CodeServerError    = "server_error"
	CodeUnavailable    = "temporarily_unavailable"
)

// Error is a refusal in CSC form. Description is written for the
// integrator and never carries a secret; Err is the internal cause, logged
// and never sent.
type Error struct {
	Status      int
	Code        string
	Description string
	Err         error
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// As gives the *errs.Error edges other than the CSC API read (logs,
// metrics, a future gRPC face): its kind follows the CSC status.
func (e *Error) As(target any) bool {
	p, ok := target.(**errs.Error)
	if !ok {
		return false
	}
	k, ok := statusKinds[e.Status]
	if !ok {
		k = errs.Internal
	}
	*p = &errs.Error{Kind: k, Code: e.Code, Detail: e.Description, Err: e.Err}
	return true
}

var statusKinds = map[int]errs.Kind{
	http.StatusBadRequest: errs.Invalid, http.StatusUnauthorized: errs.Unauthenticated, http.StatusForbidden: errs.Denied,
	http.StatusNotFound: errs.NotFound, http.StatusMethodNotAllowed: errs.Invalid, http.StatusRequestEntityTooLarge: errs.TooLarge,
	http.StatusUnsupportedMediaType: errs.Invalid, http.StatusTooManyRequests: errs.TooMany,
	http.StatusServiceUnavailable: errs.Unavailable,
}

// Is matches a sentinel with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Description == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest}
	ErrInvalidOTP     = &Error{Code: CodeInvalidOTP}
	ErrAccessDenied   = &Error{Code: CodeAccessDenied}
	ErrInvalidToken   = &Error{Code: CodeInvalidToken}
)

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

func denied(format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeAccessDenied, Description: fmt.Sprintf(format, args...)}
}

func internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeServerError, Description: "internal error", Err: err}
}

func unavailable(desc string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Description: desc, Err: err}
}
