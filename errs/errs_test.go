package errs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/firma-cloud/firma/errs"
)

var errThing = errs.Sentinel(errs.NotFound, "thing_not_found", "thing not found")

// domainError stands for transaction.Error: a type of its
// own that converts to an *errs.Error through errors.As.
type domainError struct{ code string }

func (d *domainError) Error() string { return "domain " + d.code }

func (d *domainError) As(target any) bool {
	if p, ok := target.(**errs.Error); ok {
		*p = &errs.Error{Kind: errs.Denied, Code: d.code, Detail: d.Error()}
		return true
	}
	return false
}

func TestKindAndCode(t *testing.T) {
	cause := errors.New("disk on fire")
	tests := []struct {
		name     string
		err      error
		kind     errs.Kind
		code     string
		isThing  bool
		text     string
		unwraps  error
		hasField string
	}{
		{"nil", nil, errs.Internal, "", false, "", nil, ""},
		{"plain error", cause, errs.Internal, "internal", false, "disk on fire", nil, ""},
		{"sentinel", errThing, errs.NotFound, "thing_not_found", true, "thing not found", nil, ""},
		{"wrapped sentinel", fmt.Errorf("get 7: %w", errThing), errs.NotFound, "thing_not_found", true, "get 7: thing not found", nil, ""},
		{"reworded", errs.Wrap(errThing, cause, "thing %d is not here", 7), errs.NotFound, "thing_not_found", true, "thing 7 is not here", cause, ""},
		{"other code", errs.New(errs.NotFound, "other_not_found", "x"), errs.NotFound, "other_not_found", false, "x", nil, ""},
		{"field", errs.InvalidField("invalid_request", "ok_url", "not on the allow-list"), errs.Invalid, "invalid_request", false,
			"ok_url: not on the allow-list", nil, "ok_url"},
		{"internal keeps its cause", errs.Internalf(cause, "cannot read"), errs.Internal, "internal", false, "cannot read", cause, ""},
		{"domain type", fmt.Errorf("call: %w", &domainError{"forbidden"}), errs.Denied, "forbidden", false, "call: domain forbidden", nil, ""},
		{"canceled", fmt.Errorf("sign: %w", context.Canceled), errs.Canceled, "canceled", false, "sign: context canceled", nil, ""},
		{"deadline", context.DeadlineExceeded, errs.Timeout, "deadline_exceeded", false, "context deadline exceeded", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k := errs.KindOf(tt.err); k != tt.kind {
				t.Errorf("KindOf = %v, want %v", k, tt.kind)
			}
			if c := errs.CodeOf(tt.err); c != tt.code {
				t.Errorf("CodeOf = %q, want %q", c, tt.code)
			}
			if is := errors.Is(tt.err, errThing); is != tt.isThing {
				t.Errorf("errors.Is(err, errThing) = %v, want %v", is, tt.isThing)
			}
			if tt.err != nil && tt.err.Error() != tt.text {
				t.Errorf("text %q, want %q", tt.err.Error(), tt.text)
			}
			if tt.unwraps != nil && !errors.Is(tt.err, tt.unwraps) {
				t.Errorf("cause %v not in the chain", tt.unwraps)
			}
			if e := errs.As(tt.err); tt.hasField != "" && (e == nil || e.Field != tt.hasField) {
				t.Errorf("field of %v, want %q", e, tt.hasField)
			}
		})
	}
}

func TestKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := errs.Internal; k <= errs.OutOfRange; k++ {
		n := k.String()
		if n == "" || seen[n] {
			t.Errorf("kind %d: name %q empty or repeated", k, n)
		}
		seen[n] = true
	}
	if n := errs.Kind(200).String(); n != "kind(200)" {
		t.Errorf("unknown kind named %q", n)
	}
}
