package csc

import (
	"fmt"
	"net/http"
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
