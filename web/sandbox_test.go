package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/api/rest"
)

// The sandbox's return page says what happened, names the transaction
// escaped, and loads nothing.
func TestSandboxReturnPage(t *testing.T) {
	mux := rest.NewMux()
	RegisterSandbox(mux)
	for _, c := range []struct {
		query, want, notWant string
	}{
		{"?result=ok&transaction_id=tx-1", `data-result="ok"`, `data-result="error"`},
		{"?result=error&transaction_id=tx-1", `data-result="error"`, `data-result="ok"`},
		{"", `data-result="error"`, "Transacción"},
		{"?result=ok&transaction_id=%3Cscript%3Ealert(1)%3C/script%3E", "&lt;script&gt;", "<script>"},
	} {
		t.Run(c.query, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, SandboxReturnPath+c.query, nil))
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, c.want) || strings.Contains(body, c.notWant) {
				t.Fatalf("%d, want %q and not %q:\n%s", rec.Code, c.want, c.notWant, body)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}
