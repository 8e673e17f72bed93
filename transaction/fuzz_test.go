package transaction_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/transaction"
)

// FuzzCreateREST feeds arbitrary bodies to the portal API's creation
// endpoints on a real service: each answer is a creation or a
// problem+json with a known code, never a panic, and a refusal stores
// nothing.
func FuzzCreateREST(f *testing.F) {
	// One service for every input: made with f, so it outlives each run.
	e := newEnv(f, nil)
	e.advanced(12345678)
	c, err := e.portals.Create(e.ctx, portal.Spec{Name: "Fuzz", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true,
		Limits: portal.Limits{RatePerMin: 1_000_000}})
	if err != nil {
		f.Fatal(err)
	}
	key, pid := c.APIKey, c.Portal.ID
	h := portalhttp.NewHandler(e.svc, e.portals, nil, 1<<20)
	valid, _ := json.Marshal(map[string]any{"subject_id": dni(12345678), "ok_url": okURL, "error_url": errURL,
		"documents": []map[string]any{{"name": "a.txt", "content": []byte("a")}}})
	for _, seed := range [][]byte{valid, []byte(`{}`), []byte(`{"subject_id":"12345678Z","documents":[{"name":"x","digest":"AAAA"}]}`),
		[]byte(`{"documents":[{"name":"","content":""}]}`), []byte(`[`), []byte(`{"subject_id":1}`), []byte(`{"document":{}}`)} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	known := map[transaction.Code]bool{}
	for _, c := range []transaction.Code{transaction.CodeInvalidRequest, transaction.CodeUnknownCitizen, transaction.CodeWeakRegistration,
		transaction.CodeCertificateBlocked, transaction.CodeNoCertificate, transaction.CodeTooManyDocuments, transaction.CodeDocumentTooLarge,
		transaction.CodeDuplicateDocument, transaction.CodeBadDigest, transaction.CodeBadRedirect, transaction.CodeUnsupportedFormat,
		transaction.CodeForbidden, transaction.CodeRateLimited, transaction.CodeIdempotencyReused, transaction.CodeCredentialLocked,
		transaction.CodeInvalidDocument} {
		known[c] = true
	}
	// The transactions stored so far, counted once: each run lists them
	// once, after its request, rather than before and after (listing was
	// most of a run's cost, growing with every creation). A worker runs
	// inputs one at a time, so the count is exact.
	count := func(t *testing.T) int {
		n, after := 0, ""
		for {
			page, err := e.svc.List(e.ctx, pid, "", after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if n += len(page); len(page) < 1000 {
				return n
			}
			after = page[len(page)-1].ID
		}
	}
	stored := -1
	f.Fuzz(func(t *testing.T, body []byte, batch bool) {
		if stored < 0 {
			stored = count(t)
		}
		before := stored
		path := "/api/v1/transactions"
		if batch {
			path = "/api/v1/batches"
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set(portalhttp.APIKeyHeader, key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := count(t)
		stored = after
		switch rec.Code {
		case http.StatusCreated:
			if after != before+1 {
				t.Fatalf("created, but %d -> %d transactions", before, after)
			}
		case http.StatusOK: // an idempotent replay
		default:
			var p portalhttp.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, body %q", rec.Code, rec.Body.Bytes())
			}
			if !known[p.Code] || p.Status != rec.Code || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			if after != before {
				t.Fatalf("refused (%s), but %d -> %d transactions", p.Code, before, after)
			}
		}
	})
}
