package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/firma-cloud/firma/problem"
)

func TestWrite(t *testing.T) {
	type withTx struct {
		problem.Details
		TransactionID string `json:"transaction_id,omitempty"`
	}
	tests := []struct {
		name   string
		write  func(w http.ResponseWriter)
		status int
		want   map[string]any
	}{
		{"send", func(w http.ResponseWriter) {
			problem.Send(w, http.StatusServiceUnavailable, "tsa_not_set_up", "not set up")
		},
			http.StatusServiceUnavailable, map[string]any{"type": "https://firma.cloud/problems/tsa_not_set_up", "title": "Service Unavailable",
				"status": 503.0, "detail": "not set up", "code": "tsa_not_set_up"}},
		{"field", func(w http.ResponseWriter) {
			d := problem.New(http.StatusBadRequest, "invalid_request", "ok_url: not allowed")
			d.Field = "ok_url"
			problem.Write(w, http.StatusBadRequest, d)
		}, http.StatusBadRequest, map[string]any{"type": "https://firma.cloud/problems/invalid_request", "title": "Bad Request", "status": 400.0,
			"detail": "ok_url: not allowed", "code": "invalid_request", "field": "ok_url"}},
		{"extension members", func(w http.ResponseWriter) {
			problem.Write(w, http.StatusUnprocessableEntity, withTx{problem.New(422, "weak_registration", "basic level"), "tx1"})
		}, http.StatusUnprocessableEntity, map[string]any{"type": "https://firma.cloud/problems/weak_registration", "title": "Unprocessable Entity",
			"status": 422.0, "detail": "basic level", "code": "weak_registration", "transaction_id": "tx1"}},
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
