package errs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind is the class of a problem, what an edge's status is chosen by.
type Kind uint8

// Kinds. Each edge (gRPC, REST problem+json, CSC, the approval page) maps
// every kind in one table.
const (
	Internal           Kind = iota // our fault; the detail is never shown
	Invalid                        // the request is malformed: a field, the body
	NotFound                       // what was asked for does not exist (for this caller)
	Conflict                       // it exists already, or was changed meanwhile
	FailedPrecondition             // the state does not allow this step now
	Unprocessable                  // well-formed but refused by a rule about the subject (e.g. weak registration)
	Denied                         // the caller is known but may not do this
	Unauthenticated                // the caller is not known
	TooMany                        // a rate or count limit; RetryAfter says when to come back
	TooLarge                       // the request or a document is over a size limit
	Gone                           // it existed but was deleted (e.g. purged results)
	Unavailable                    // a dependency is down: retry
	Canceled                       // the caller gave up
	Timeout                        // the deadline passed
	OutOfRange                     // a position or size beyond what exists (e.g. past the end of the audit log)
)

var kindNames = [...]string{"internal", "invalid", "not_found", "conflict", "failed_precondition", "unprocessable", "denied",
	"unauthenticated", "too_many", "too_large", "gone", "unavailable", "canceled", "timeout", "out_of_range"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is a problem with its kind and stable code.
type Error struct {
	Kind   Kind
	Code   string // stable, machine-readable; never renamed
	Detail string // for people; never carries a secret
	Field  string // the request field at fault, if one is
	// RetryAfter, for TooMany and Unavailable, says when a retry may
	// succeed; 0 means the edge's default.
	RetryAfter time.Duration
	Err        error // the internal cause: logged, never shown
}

// Error returns the detail, or the code if there is none.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code
	}
	return e.Detail
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches a sentinel: an *Error with the same code and no cause, so
// errors.Is(err, keystore.ErrKeyNotFound) holds for any key not found
// however it was worded.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Field == "" && t.Err == nil
}

// New returns an Error of kind k with code and detail.
func New(k Kind, code, detail string) *Error { return &Error{Kind: k, Code: code, Detail: detail} }

// Newf is New with a formatted detail.
func Newf(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Sentinel returns an Error to declare as a package's sentinel: errors.Is
// matches every Error with its code. detail is its text when returned as
// is, usually the text the sentinel had before it was an Error.
func Sentinel(k Kind, code, detail string) *Error { return &Error{Kind: k, Code: code, Detail: detail} }

// Wrap returns an Error of the sentinel's kind and code, with detail and
// the cause kept for the log.
func Wrap(sentinel *Error, cause error, format string, args ...any) *Error {
	return &Error{Kind: sentinel.Kind, Code: sentinel.Code, Detail: fmt.Sprintf(format, args...), Err: cause}
}

// InvalidField is an Invalid error naming the request field at fault.
func InvalidField(code, field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: code, Field: field, Detail: field + ": " + fmt.Sprintf(format, args...)}
}

// Internalf is an Internal error with its cause: the edge shows neither.
func Internalf(cause error, format string, args ...any) *Error {
	return &Error{Kind: Internal, Code: "internal", Detail: fmt.Sprintf(format, args...), Err: cause}
}

// As returns the first *Error in err's chain, converting a domain error
// type that offers one through errors.As. Context cancellation and
// deadlines, which come from the standard library, are Canceled and
// Timeout. nil if there is none.
func As(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Kind: Canceled, Code: "canceled", Detail: "request canceled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: Timeout, Code: "deadline_exceeded", Detail: "deadline exceeded", Err: err}
	}
	return nil
}

// KindOf is the kind of err: Internal for an error that is not an *Error.
func KindOf(err error) Kind {
	if e := As(err); e != nil {
		return e.Kind
	}
	return Internal
}

// CodeOf is the code of err, "" for nil and "internal" for an error that
// is not an *Error.
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return "internal"
}
