package web

import (
	"errors"
	"net/http"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/transaction"
)

// shown is how the pages show one error: the HTTP status and the message
// key (i18n.go).
type shown struct {
	status int
	key    string
}

// byCode is the one table from an error's errs code to what the approval
// page and /me show, like the other edges' tables (api/errors.go,
// api/rest Status). The transaction core's codes reach it through
// transaction.Error's errs.Error form.
var byCode = map[string]shown{
	string(transaction.CodeUnknownTransaction): {http.StatusNotFound, "err.not_found"},
	string(transaction.CodeBadCredentials):     {http.StatusUnauthorized, "err.bad_credentials"},
	string(transaction.CodeCredentialLocked):   {http.StatusForbidden, "err.credential_locked"},
	string(transaction.CodeLoginThrottled):     {http.StatusTooManyRequests, "err.try_later"},
	string(transaction.CodeCitizenMismatch):    {http.StatusForbidden, "err.citizen_mismatch"},
	string(transaction.CodeSessionInvalid):     {http.StatusUnauthorized, "err.session_invalid"},
	string(transaction.CodeOTPInvalid):         {http.StatusBadRequest, "err.otp_invalid"},
	string(transaction.CodeOTPExpired):         {http.StatusBadRequest, "err.otp_expired"},
	string(transaction.CodeOTPLocked):          {http.StatusForbidden, "final.otp_locked"},
	string(transaction.CodeOTPNotSent):         {http.StatusConflict, "err.otp_not_sent"},
	string(transaction.CodeResendLimit):        {http.StatusTooManyRequests, "err.otp_resend_limit"},
	string(transaction.CodeOTPChannelLocked):   {http.StatusTooManyRequests, "err.otp_channel_locked"},
	string(transaction.CodeResendTooSoon):      {http.StatusTooManyRequests, "err.otp_resend_too_soon"},
	string(transaction.CodeSMSFailed):          {http.StatusBadGateway, "err.sms_failed"},
	string(transaction.CodeAlreadyUsed):        {http.StatusConflict, "err.already_used"},
	string(transaction.CodeExpired):            {http.StatusGone, "final.expired"},
	string(transaction.CodeCancelled):          {http.StatusConflict, "final.cancelled"},
	string(transaction.CodeCancelledByCitizen): {http.StatusConflict, "final.rejected"},
	string(transaction.CodeWrongState):         {http.StatusConflict, "err.invalid_state"},
	string(transaction.CodeInvalidRequest):     {http.StatusBadRequest, "err.invalid_request"},
	string(transaction.CodeUnavailable):        {http.StatusServiceUnavailable, "err.unavailable"},
	string(transaction.CodeSigningFailed):      {http.StatusBadGateway, "final.failed"},
	string(transaction.CodeCertificateBlocked): {http.StatusForbidden, "err.certificate_blocked"},
	string(transaction.CodeNoCertificate):      {http.StatusConflict, "err.no_certificate"},
	string(transaction.CodeWeakRegistration):   {http.StatusForbidden, "err.weak_registration"},
	string(transaction.CodeUnknownCitizen):     {http.StatusForbidden, "err.forbidden"},
	string(transaction.CodeForbidden):          {http.StatusForbidden, "err.forbidden"},
	// /me's sign-in, from the registry (see codeOf for its other refusals).
	registry.ErrThrottled.Code: {http.StatusTooManyRequests, "err.try_later"},
	// The limits (a full password-check queue).
	limit.CodeBusy:        {http.StatusServiceUnavailable, "err.unavailable"},
	limit.CodeRateLimited: {http.StatusTooManyRequests, "err.rate_limited"},
}

// byKind answers an error whose code the table does not hold.
var byKind = map[errs.Kind]shown{
	errs.Unavailable: {http.StatusServiceUnavailable, "err.unavailable"},
	errs.TooMany:     {http.StatusTooManyRequests, "err.try_later"},
}

var internal = shown{http.StatusInternalServerError, "err.internal"}

// codeOf is err's errs code ("" for none). The registry's password
// refusals are plain errors there, with no code: they are named here, and
// only here, by errors.Is, as the transaction core's codes for the same.
// An unknown DNI/NIE is a wrong password, in the page, the log and the
// metrics alike, so that nothing tells who is registered.
func codeOf(err error) string {
	switch {
	case errors.Is(err, registry.ErrLocked):
		return string(transaction.CodeCredentialLocked)
	case errors.Is(err, registry.ErrBadCredentials), errors.Is(err, registry.ErrInvalid), errors.Is(err, registry.ErrNotFound):
		return string(transaction.CodeBadCredentials)
	}
	if e := errs.As(err); e != nil {
		return e.Code
	}
	return ""
}

// show is what the pages show for err, and its code ("" for none).
func show(err error) (string, shown) {
	code := codeOf(err)
	if s, ok := byCode[code]; ok {
		return code, s
	}
	if s, ok := byKind[errs.KindOf(err)]; ok {
		return code, s
	}
	return code, internal
}
