package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/firma-cloud/firma/problem"
)

func TestWrite(t *testing.T) {
	type withCode struct {
		problem.Details
		Code string `json:"code"`
	}
	tests := []struct {
		name   string
		write  func(w http.ResponseWriter)
		status int
		want   map[string]any
	}{
		{"basic", func(w http.ResponseWriter) {
			problem.Basic(w, http.StatusServiceUnavailable, "Service Unavailable", "not set up")
		},
			http.StatusServiceUnavailable, map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": 503.0, "detail": "not set up"}},
		{"extension members", func(w http.ResponseWriter) {
			problem.Write(w, http.StatusUnprocessableEntity, withCode{problem.Details{Type: "https://firma.cloud/problems/weak", Title: "Unprocessable Entity",
				Status: 422, Detail: "basic level"}, "weak_registration"})
		}, http.StatusUnprocessableEntity, map[string]any{"type": "https://firma.cloud/problems/weak", "title": "Unprocessable Entity", "status": 422.0,
			"detail": "basic level", "code": "weak_registration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.write(rec)
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != problem.ContentType || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("document %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
