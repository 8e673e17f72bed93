package portalhttp_test

import (
	"net/http"
	"testing"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/transaction"
)

// TestStatusesUnchanged pins the status every code left /api/v1 with
// before statuses came from the kind table: portals depend on them.
func TestStatusesUnchanged(t *testing.T) {
	tests := []struct {
		status int
		codes  []transaction.Code
	}{
		{http.StatusBadRequest, []transaction.Code{transaction.CodeInvalidRequest, transaction.CodeBadDigest, transaction.CodeDuplicateDocument,
			transaction.CodeTooManyDocuments, transaction.CodeBadRedirect, transaction.CodeUnsupportedFormat, transaction.CodeOTPInvalid,
			transaction.CodeInvalidDocument}},
		{http.StatusRequestEntityTooLarge, []transaction.Code{transaction.CodeDocumentTooLarge}},
		{http.StatusUnauthorized, []transaction.Code{transaction.CodeBadCredentials, transaction.CodeSessionInvalid}},
		{http.StatusForbidden, []transaction.Code{transaction.CodeForbidden, transaction.CodeCitizenMismatch}},
		{http.StatusNotFound, []transaction.Code{transaction.CodeUnknownTransaction}},
		{http.StatusUnprocessableEntity, []transaction.Code{transaction.CodeUnknownCitizen, transaction.CodeWeakRegistration,
			transaction.CodeCertificateBlocked, transaction.CodeNoCertificate, transaction.CodeCredentialLocked}},
		{http.StatusConflict, []transaction.Code{transaction.CodeExpired, transaction.CodeWrongState, transaction.CodeAlreadyUsed,
			transaction.CodeCancelledByCitizen, transaction.CodeCancelled, transaction.CodeOTPLocked, transaction.CodeOTPExpired,
			transaction.CodeOTPNotSent, transaction.CodeIdempotencyReused}},
		{http.StatusTooManyRequests, []transaction.Code{transaction.CodeRateLimited, transaction.CodeResendLimit, transaction.CodeResendTooSoon,
			transaction.CodeLoginThrottled}},
		{http.StatusGone, []transaction.Code{transaction.CodeResultsPurged}},
		{http.StatusServiceUnavailable, []transaction.Code{transaction.CodeUnavailable, transaction.CodeSMSFailed, transaction.CodeSigningFailed,
			transaction.CodeTimestampFailed}},
		{http.StatusInternalServerError, []transaction.Code{"internal", "no_such_code"}},
	}
	for _, tt := range tests {
		for _, c := range tt.codes {
			if got := portalhttp.HTTPStatus(c); got != tt.status {
				t.Errorf("%s: HTTP %d, want %d", c, got, tt.status)
			}
		}
	}
}
