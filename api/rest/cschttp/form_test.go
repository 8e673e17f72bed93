package cschttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
)

// TestForms: every kind has a CSC answer, and an error leaves with its
// kind's status, its own code when it is a CSC code, and never its cause.
func TestForms(t *testing.T) {
	for k := errs.Kind(0); k.String() != fmt.Sprintf("kind(%d)", k); k++ {
		if _, ok := forms[k]; !ok {
			t.Errorf("kind %s has no CSC answer", k)
		}
	}
	secret := errors.New("pq: password authentication failed for user firma")
	for _, c := range []struct {
		name       string
		err        error
		status     int
		code, desc string
		retry      string
	}{
		{"wrong otp", fmt.Errorf("authorize: %w", errs.New(errs.Invalid, csc.CodeInvalidOTP, "wrong OTP; 2 tries left")),
			400, "invalid_otp", "wrong OTP; 2 tries left", ""},
		{"another domain's code", keystore.ErrKeyDestroyed, 400, "invalid_request", "key destroyed", ""},
		{"resend too soon", errs.New(errs.TooMany, csc.CodeInvalidRequest, "a new code can be sent in 20 seconds"),
			429, "invalid_request", "a new code can be sent in 20 seconds", "1"},
		{"unavailable", &errs.Error{Kind: errs.Unavailable, Code: csc.CodeUnavailable, Detail: "the SMS could not be sent", Err: secret},
			503, "temporarily_unavailable", "the SMS could not be sent", "1"},
		{"policy refusal", &policy.Refusal{Rule: policy.RuleAdvancedRequired, Reason: "advanced level required"},
			403, "access_denied", "advanced level required", ""},
		{"bare error", secret, 500, "server_error", "internal error", ""},
		{"bad token", errs.New(errs.Unauthenticated, csc.CodeInvalidToken, "portal credentials not recognised"),
			401, "invalid_token", "portal credentials not recognised", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			formOf(c.err).write(rec)
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != c.status || body["error"] != c.code || body["error_description"] != c.desc {
				t.Errorf("got %d %v, want %d %s %q", rec.Code, body, c.status, c.code, c.desc)
			}
			if got := rec.Header().Get("Retry-After"); got != c.retry {
				t.Errorf("Retry-After = %q, want %q", got, c.retry)
			}
			if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
