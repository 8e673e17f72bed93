package transaction

import (
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/errs"
)

// Code is a stable machine-readable reason a portal or page can branch on.
type Code string

// Error codes. They are part of the API: never rename one.
const (
	CodeInvalidRequest     Code = "invalid_request"        // a field is missing or malformed
	CodeUnknownCitizen     Code = "unknown_citizen"        // no citizen registered with that DNI/NIE
	CodeWeakRegistration   Code = "weak_registration"      // basic level: the message says how to reach advanced
	CodeCertificateBlocked Code = "certificate_blocked"    // registration locked, or certificate revoked for key compromise
	CodeNoCertificate      Code = "no_certificate"         // none valid and none can be issued now
	CodeTooManyDocuments   Code = "too_many_documents"     // over the portal's per-transaction limit
	CodeDocumentTooLarge   Code = "document_too_large"     // over the per-document size limit
	CodeDuplicateDocument  Code = "duplicate_document"     // the same digest twice in one batch
	CodeBadDigest          Code = "bad_digest_length"      // digest not as long as its algorithm gives
	CodeBadRedirect        Code = "bad_redirect_url"       // OK or error URL not on the portal's allow-list
	CodeUnsupportedFormat  Code = "unsupported_format"     // format not available for this document
	CodeForbidden          Code = "forbidden"              // the caller may not do this
	CodeRateLimited        Code = "rate_limited"           // the portal's transactions-per-minute limit
	CodeIdempotencyReused  Code = "idempotency_key_reused" // the key came before with a different request
	CodeUnknownTransaction Code = "invalid_transaction"    // no such transaction (for this caller)
	CodeExpired            Code = "transaction_expired"    // not approved in time
	CodeWrongState         Code = "invalid_state"          // the step does not apply in the current state
	CodeAlreadyUsed        Code = "already_used"           // approved (or ended) before: a replay
	CodeCancelledByCitizen Code = "cancelled_by_citizen"   // the citizen rejected
	CodeCancelled          Code = "cancelled"              // the portal cancelled
	CodeBadCredentials     Code = "bad_credentials"        // wrong DNI/NIE or password
	CodeCredentialLocked   Code = "credential_locked"      // Cl@ve Permanente password locked
	CodeLoginThrottled     Code = "login_throttled"        // wrong passwords make this DNI/NIE or client wait; try again later
	CodeCitizenMismatch    Code = "citizen_mismatch"       // signed in as another citizen than the transaction's
	CodeSessionInvalid     Code = "session_invalid"        // missing or wrong citizen session
	CodeOTPInvalid         Code = "otp_invalid"            // wrong code; tries remain
	CodeOTPExpired         Code = "otp_expired"            // the code's 5 minutes passed; ask for a new one
	CodeOTPLocked          Code = "otp_locked"             // too many wrong codes: the transaction failed
	CodeOTPChannelLocked   Code = "otp_channel_locked"     // the citizen's codes are locked a while by wrong codes (any portal); the transaction waits
	CodeOTPNotSent         Code = "otp_not_sent"           // no code was sent yet
	CodeResendLimit        Code = "otp_resend_limit"       // no more codes may be sent
	CodeResendTooSoon      Code = "otp_resend_too_soon"    // wait before asking again
	CodeSMSFailed          Code = "sms_failed"             // the SMS gateway failed; no code counts as sent
	CodeSigningFailed      Code = "signing_failed"         // the HSM or a format failed on a document
	CodeInvalidDocument    Code = "invalid_document"       // the document cannot be signed in its format (e.g. a broken PDF)
	CodeTimestampFailed    Code = "timestamp_failed"       // the timestamp authority failed (B-T)
	CodeResultsPurged      Code = "results_purged"         // the signed documents were deleted after the retention period
	CodeUnavailable        Code = "unavailable"            // a dependency is down; retry
)

// CodeNotFound is CodeUnknownTransaction's former name: the value
// ("invalid_transaction") is FIRe's, the Go name now says what it is.
//
// Deprecated: use CodeUnknownTransaction.
const CodeNotFound = CodeUnknownTransaction

// kinds classes every code for the edges (errs.Kind); a code not listed
// is errs.Internal.
var kinds = map[Code]errs.Kind{
	CodeInvalidRequest: errs.Invalid, CodeBadDigest: errs.Invalid, CodeDuplicateDocument: errs.Invalid,
	CodeTooManyDocuments: errs.Invalid, CodeBadRedirect: errs.Invalid, CodeUnsupportedFormat: errs.Invalid,
	CodeOTPInvalid: errs.Invalid, CodeInvalidDocument: errs.Invalid,
	CodeDocumentTooLarge: errs.TooLarge,
	CodeBadCredentials:   errs.Unauthenticated, CodeSessionInvalid: errs.Unauthenticated,
	CodeForbidden: errs.Denied, CodeCitizenMismatch: errs.Denied,
	CodeUnknownTransaction: errs.NotFound,
	CodeUnknownCitizen:     errs.Unprocessable, CodeWeakRegistration: errs.Unprocessable, CodeCertificateBlocked: errs.Unprocessable,
	CodeNoCertificate: errs.Unprocessable, CodeCredentialLocked: errs.Unprocessable,
	CodeExpired: errs.FailedPrecondition, CodeWrongState: errs.FailedPrecondition, CodeAlreadyUsed: errs.FailedPrecondition,
	CodeCancelledByCitizen: errs.FailedPrecondition, CodeCancelled: errs.FailedPrecondition, CodeOTPLocked: errs.FailedPrecondition,
	CodeOTPExpired: errs.FailedPrecondition, CodeOTPNotSent: errs.FailedPrecondition,
	CodeIdempotencyReused: errs.Conflict,
	CodeRateLimited:       errs.TooMany, CodeLoginThrottled: errs.TooMany, CodeResendLimit: errs.TooMany, CodeResendTooSoon: errs.TooMany,
	CodeResultsPurged: errs.Gone,
	CodeUnavailable:   errs.Unavailable, CodeSMSFailed: errs.Unavailable, CodeSigningFailed: errs.Unavailable, CodeTimestampFailed: errs.Unavailable,
}

// Kind is the errs.Kind of a code.
func (c Code) Kind() errs.Kind { return kinds[c] }

// Error is a refusal or failure with a stable code and a message written
// for people. Err, when set, is the internal cause; it is never shown.
type Error struct {
	Code    Code
	Message string
	Field   string // for invalid_request and friends: which request field
	Err     error
}

// Error returns the message for people.
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// As gives the *errs.Error the edges read: the code's kind, the code, the
// message as detail and the field. The rate limit asks for a minute.
func (e *Error) As(target any) bool {
	p, ok := target.(**errs.Error)
	if !ok {
		return false
	}
	*p = &errs.Error{Kind: e.Code.Kind(), Code: string(e.Code), Detail: e.Message, Field: e.Field, Err: e.Err}
	if e.Code == CodeRateLimited {
		(*p).RetryAfter = time.Minute
	}
	if e.Code == CodeLoginThrottled {
		// The registry's wait, carried by the cause.
		var cause *errs.Error
		if e.Err != nil && errors.As(e.Err, &cause) {
			(*p).RetryAfter = cause.RetryAfter
		}
	}
	return true
}

// Is matches another *Error with the same code, so the sentinels below
// work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Field == "" && t.Err == nil
}

// Sentinels for errors.Is, one per code a caller commonly tells apart.
var (
	ErrInvalidRequest     = &Error{Code: CodeInvalidRequest}
	ErrUnknownCitizen     = &Error{Code: CodeUnknownCitizen}
	ErrWeakRegistration   = &Error{Code: CodeWeakRegistration}
	ErrCertificateBlocked = &Error{Code: CodeCertificateBlocked}
	ErrNoCertificate      = &Error{Code: CodeNoCertificate}
	ErrTooManyDocuments   = &Error{Code: CodeTooManyDocuments}
	ErrDocumentTooLarge   = &Error{Code: CodeDocumentTooLarge}
	ErrDuplicateDocument  = &Error{Code: CodeDuplicateDocument}
	ErrBadDigest          = &Error{Code: CodeBadDigest}
	ErrBadRedirect        = &Error{Code: CodeBadRedirect}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrRateLimited        = &Error{Code: CodeRateLimited}
	ErrNotFound           = &Error{Code: CodeUnknownTransaction}
	ErrExpired            = &Error{Code: CodeExpired}
	ErrWrongState         = &Error{Code: CodeWrongState}
	ErrAlreadyUsed        = &Error{Code: CodeAlreadyUsed}
	ErrCancelledByCitizen = &Error{Code: CodeCancelledByCitizen}
	ErrCancelled          = &Error{Code: CodeCancelled}
	ErrBadCredentials     = &Error{Code: CodeBadCredentials}
	ErrCredentialLocked   = &Error{Code: CodeCredentialLocked}
	ErrCitizenMismatch    = &Error{Code: CodeCitizenMismatch}
	ErrSessionInvalid     = &Error{Code: CodeSessionInvalid}
	ErrOTPInvalid         = &Error{Code: CodeOTPInvalid}
	ErrOTPExpired         = &Error{Code: CodeOTPExpired}
	ErrOTPLocked          = &Error{Code: CodeOTPLocked}
	ErrOTPNotSent         = &Error{Code: CodeOTPNotSent}
	ErrResendLimit        = &Error{Code: CodeResendLimit}
	ErrResendTooSoon      = &Error{Code: CodeResendTooSoon}
	ErrSMSFailed          = &Error{Code: CodeSMSFailed}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
)

// CodeOf returns the code of the *Error in err's chain, or "" if none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func refuse(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func fail(code Code, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}
