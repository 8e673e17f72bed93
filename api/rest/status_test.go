package rest

import (
	"net/http"
	"testing"

	"github.com/firma-cloud/firma/errs"
)

// TestEveryKindHasAStatus makes a new errs.Kind fail here until the REST
// table says how it leaves.
func TestEveryKindHasAStatus(t *testing.T) {
	for k := errs.Internal; k <= errs.OutOfRange; k++ {
		s, ok := statuses[k]
		if !ok || s < 400 {
			t.Errorf("kind %v: status %d", k, s)
		}
	}
	if s := Status(errs.Kind(250)); s != http.StatusInternalServerError {
		t.Errorf("unknown kind: %d", s)
	}
}
