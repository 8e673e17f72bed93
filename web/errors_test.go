package web

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/transaction"
)

// TestShow: the one table answers for the transaction core's codes, the
// registry's sign-in refusals, the limits and kinds, wrapped or not; an
// unknown DNI/NIE looks like a wrong password; every message exists in
// both languages.
func TestShow(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		code   string
		status int
		key    string
	}{
		{"transaction code", &transaction.Error{Code: transaction.CodeOTPInvalid}, "otp_invalid", http.StatusBadRequest, "err.otp_invalid"},
		{"wrapped", fmt.Errorf("approve: %w", &transaction.Error{Code: transaction.CodeExpired}), string(transaction.CodeExpired), http.StatusGone, "final.expired"},
		{"sentinel", transaction.ErrInvalidRequest, "invalid_request", http.StatusBadRequest, "err.invalid_request"},
		{"wrong password", fmt.Errorf("x: %w", registry.ErrBadCredentials), "bad_credentials", http.StatusUnauthorized, "err.bad_credentials"},
		{"unknown DNI is a wrong password", registry.ErrNotFound, "bad_credentials", http.StatusUnauthorized, "err.bad_credentials"},
		{"malformed DNI is a wrong password", &registry.FieldError{Field: "citizen", Reason: "bad letter"}, "bad_credentials", http.StatusUnauthorized, "err.bad_credentials"},
		{"locked", registry.ErrLocked, "credential_locked", http.StatusForbidden, "err.credential_locked"},
		{"throttled", errs.Wrap(registry.ErrThrottled, nil, "wait"), "login_throttled", http.StatusTooManyRequests, "err.try_later"},
		{"busy", &errs.Error{Kind: errs.Unavailable, Code: limit.CodeBusy}, "busy", http.StatusServiceUnavailable, "err.unavailable"},
		{"kind only", &errs.Error{Kind: errs.Unavailable, Code: "hsm_down"}, "hsm_down", http.StatusServiceUnavailable, "err.unavailable"},
		{"plain error", errors.New("disk on fire"), "", http.StatusInternalServerError, "err.internal"},
	} {
		code, sh := show(tt.err)
		if code != tt.code || sh.status != tt.status || sh.key != tt.key {
			t.Errorf("%s: %q %d %q, want %q %d %q", tt.name, code, sh.status, sh.key, tt.code, tt.status, tt.key)
		}
	}
	all := []shown{internal}
	for _, s := range byCode {
		all = append(all, s)
	}
	for _, s := range byKind {
		all = append(all, s)
	}
	for _, s := range all {
		for _, l := range langs {
			if _, ok := messages[l][s.key]; !ok {
				t.Errorf("%q has no %s text", s.key, l)
			}
		}
	}
}
