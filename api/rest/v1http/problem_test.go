package v1http

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
)

// TestProblemShape checks a status error becomes a problem document with
// type, title, status, detail, code and, for a bad field, field.
func TestProblemShape(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		reason string
		field  string
		detail string
	}{
		{"bad field", api.InvalidArgument("page_size", "must be a number"), http.StatusBadRequest, "invalid_argument",
			"ERROR_REASON_INVALID_ARGUMENT", "page_size", "page_size: must be a number"},
		{"no ErrorInfo", status.Error(codes.NotFound, "nothing here"), http.StatusNotFound, "not_found", "", "", "nothing here"},
		{"internal hides its text", status.Error(codes.Internal, "db password wrong"), http.StatusInternalServerError, "internal", "", "",
			"internal error"},
		{"not a status", errors.New("boom"), http.StatusInternalServerError, "unknown", "", "", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeProblem(rec, tt.err)
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("%d %v", rec.Code, rec.Header())
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"type", "title", "status", "detail", "code"} {
				if _, ok := m[k]; !ok {
					t.Errorf("no %s in %v", k, m)
				}
			}
			if m["code"] != tt.code || m["detail"] != tt.detail || m["status"] != float64(tt.status) {
				t.Errorf("problem %v, want code %q detail %q", m, tt.code, tt.detail)
			}
			if r, _ := m["reason"].(string); r != tt.reason {
				t.Errorf("reason %q, want %q", r, tt.reason)
			}
			if f, _ := m["field"].(string); f != tt.field {
				t.Errorf("field %q, want %q", f, tt.field)
			}
		})
	}
}
