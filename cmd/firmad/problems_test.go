package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/portal"
	"gopkg.in/yaml.v3"
)

// form is how a route answers a bad request.
type form int

const (
	problemForm form = iota // application/problem+json, the one REST shape
	cscForm                 // the CSC API's {"error", "error_description"}
	protocol                // a binary protocol (OCSP) answers in its own terms
	succeeds                // nothing in the request can be wrong; it answers 2xx
	fireForm                // FIRe's {"c", "m"}
	textPage                // a line of text for a person whose browser came back too late
	notAPI                  // the citizen's web page, probes and metrics
)

// routeCase is one request to a route and what must come back.
type routeCase struct {
	form   form
	method string
	path   string
	auth   string // "", "portal" or "operator"
	ct     string
	body   string
	status int
	code   string // the problem's (or CSC error's) code
	field  string // the problem's field, when one is at fault
}

// TestEveryRouteAnswersOneProblemShape walks every route registered on
// firmad's HTTP mux, in process, with a bad request, and checks the answer
// is the one problem shape (or the CSC or binary form its protocol fixes).
// A route registered without a case here fails the test, and so does one
// the OpenAPI document does not describe; every answer is validated
// against that document (openapitest).
func TestEveryRouteAnswersOneProblemShape(t *testing.T) {
	s := initState(t)
	t.Chdir(s.dir)
	t.Setenv("SOFTHSM2_CONF", "")
	// With FIRe's endpoint, so that its routes are walked too.
	yml, err := os.ReadFile("var/firmad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(yml, &conf); err != nil {
		t.Fatal(err)
	}
	fire, _ := conf["fire"].(map[string]any)
	if fire == nil {
		fire = map[string]any{}
		conf["fire"] = fire
	}
	fire["enabled"] = true
	if yml, err = yaml.Marshal(conf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("var/firmad.yaml", yml, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("var/firmad.yaml", func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	srv := httptest.NewServer(openapitest.Handler(t, a.mux))
	defer srv.Close()
	checkDescribed(t, a.mux.Patterns())
	operator, err := os.ReadFile(filepath.Join("var", "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := portal.New(a.store, portal.Options{}).Create(ctx, portal.Spec{Name: "Sede de prueba", RedirectURLs: []string{"https://sede.example.es/ok"}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"portal": p.APIKey, "operator": strings.TrimSpace(string(operator))}

	const (
		badJSON = `{"subject_id": `
		jsonCT  = "application/json"
		unknown = "tx-does-not-exist"
	)
	// Every pattern firmad registers, and at least one case for it.
	cases := map[string][]routeCase{
		// /api/v1, the portal REST API (api/rest/portalhttp).
		"POST /api/v1/transactions": {
			{method: "POST", path: "/api/v1/transactions", ct: jsonCT, body: `{}`, status: 401, code: "unauthenticated"},
			{method: "POST", path: "/api/v1/transactions", auth: "portal", ct: jsonCT, body: badJSON, status: 400, code: "invalid_request", field: "body"},
			{method: "POST", path: "/api/v1/transactions", auth: "portal", ct: "text/plain", body: `{}`, status: 400, code: "invalid_request", field: "content-type"},
		},
		"POST /api/v1/sign": {
			{method: "POST", path: "/api/v1/sign", auth: "portal", ct: jsonCT, body: `{"subject_id":"12345678Z"}`, status: 400, code: "invalid_request", field: "document"},
		},
		"GET /api/v1/transactions": {{method: "GET", path: "/api/v1/transactions", status: 401, code: "unauthenticated"}},
		"GET /api/v1/transactions/{id}": {
			{method: "GET", path: "/api/v1/transactions/" + unknown, auth: "portal", status: 404, code: "invalid_transaction"},
		},
		"GET /api/v1/transactions/{id}/result": {
			{method: "GET", path: "/api/v1/transactions/" + unknown + "/result", auth: "portal", status: 404, code: "invalid_transaction"},
		},
		"GET /api/v1/transactions/{id}/documents/{index}": {
			{method: "GET", path: "/api/v1/transactions/" + unknown + "/documents/0", auth: "portal", status: 404, code: "invalid_transaction"},
		},
		"POST /api/v1/transactions/{id}/cancel": {
			{method: "POST", path: "/api/v1/transactions/" + unknown + "/cancel", auth: "portal", status: 404, code: "invalid_transaction"},
		},
		"POST /api/v1/batches": {
			{method: "POST", path: "/api/v1/batches", auth: "portal", ct: jsonCT, body: `{"documents":[{"name":"a"}]}`, status: 400, code: "invalid_request", field: "documents"},
		},
		"POST /api/v1/batches/{id}/documents": {
			{method: "POST", path: "/api/v1/batches/" + unknown + "/documents", auth: "portal", ct: jsonCT, body: `{"surprise":1}`, status: 400, code: "invalid_request", field: "body"},
		},
		"POST /api/v1/signatures/upgrade": {
			{method: "POST", path: "/api/v1/signatures/upgrade", ct: jsonCT, body: `{}`, status: 401, code: "unauthenticated"},
			{method: "POST", path: "/api/v1/signatures/upgrade", auth: "portal", ct: jsonCT, body: `{"level":"B-Z"}`, status: 400, code: "invalid_request", field: "level"},
		},
		"POST /api/v1/batches/{id}/sign": {
			{method: "POST", path: "/api/v1/batches/" + unknown + "/sign", auth: "portal", status: 404, code: "invalid_transaction"},
		},

		// /v1, the REST face of the gRPC services (api/rest/v1http).
		"POST /v1/registry/registrations/in-person": {
			{method: "POST", path: "/v1/registry/registrations/in-person", ct: jsonCT, body: `{}`, status: 401, code: "staff_required"},
		},
		"POST /v1/registry/registrations/video-call": {
			{method: "POST", path: "/v1/registry/registrations/video-call", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"GET /v1/registry/service-hours": {{form: succeeds, method: "GET", path: "/v1/registry/service-hours", status: 200}},
		"GET /v1/registry/citizens/{id}": {{method: "GET", path: "/v1/registry/citizens/12345678Z", status: 401, code: "staff_required"}},
		"GET /v1/registry/citizens":      {{method: "GET", path: "/v1/registry/citizens?page_size=x", status: 400, code: "invalid_argument", field: "page_size"}},
		"POST /v1/registry/citizens/{id}/downgrade": {
			{method: "POST", path: "/v1/registry/citizens/12345678Z/downgrade", ct: jsonCT, body: `{}`, status: 401, code: "staff_required"},
		},
		"POST /v1/registry/citizens/{id}/remove": {
			{method: "POST", path: "/v1/registry/citizens/12345678Z/remove", ct: jsonCT, body: `{}`, status: 401, code: "staff_required"},
		},
		"POST /v1/registry/citizens/{id}/activation": {
			{method: "POST", path: "/v1/registry/citizens/12345678Z/activation", status: 401, code: "staff_required"},
		},
		"PUT /v1/registry/fiscal-records/{id}": {
			{method: "PUT", path: "/v1/registry/fiscal-records/12345678Z", ct: jsonCT, body: `{}`, status: 401, code: "staff_required"},
		},
		"GET /v1/registry/sms-outbox": {{method: "GET", path: "/v1/registry/sms-outbox", status: 401, code: "staff_required"}},
		"GET /v1/registry/letters":    {{method: "GET", path: "/v1/registry/letters", status: 401, code: "staff_required"}},
		"POST /v1/registry/letters": {
			{method: "POST", path: "/v1/registry/letters", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"POST /v1/registry/letters/redeem": {
			{method: "POST", path: "/v1/registry/letters/redeem", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"POST /v1/registry/certificate/challenges": {{form: succeeds, method: "POST", path: "/v1/registry/certificate/challenges", status: 200}},
		"POST /v1/registry/certificate/registrations": {
			{method: "POST", path: "/v1/registry/certificate/registrations", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"POST /v1/registry/certificate/registrations/{pending}/confirm": {
			{method: "POST", path: "/v1/registry/certificate/registrations/nope/confirm", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"POST /v1/registry/password": {
			{method: "POST", path: "/v1/registry/password", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"POST /v1/registry/import": {{method: "POST", path: "/v1/registry/import", ct: "text/csv", body: "id\n", status: 401, code: "staff_required"}},
		"GET /v1/certificates":     {{method: "GET", path: "/v1/certificates", status: 401, code: "unauthenticated"}},
		"GET /v1/certificates/{id}": {
			{method: "GET", path: "/v1/certificates/crt-nope", auth: "operator", status: 404, code: "certificate_not_found"},
		},
		"GET /v1/ca/chain": {{form: succeeds, method: "GET", path: "/v1/ca/chain", auth: "operator", status: 200}},
		"POST /v1/certificates/ensure": {
			{method: "POST", path: "/v1/certificates/ensure", auth: "operator", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},
		"POST /v1/certificates/issue": {
			{method: "POST", path: "/v1/certificates/issue", auth: "operator", ct: jsonCT, body: `{"citizen_id":"12345678Z"}`, status: 404, code: "citizen_not_found"},
		},
		"POST /v1/certificates/renew":  {{method: "POST", path: "/v1/certificates/renew", ct: jsonCT, body: `{}`, status: 401, code: "unauthenticated"}},
		"POST /v1/certificates/csr":    {{method: "POST", path: "/v1/certificates/csr", ct: jsonCT, body: `{}`, status: 401, code: "unauthenticated"}},
		"POST /v1/certificates/import": {{method: "POST", path: "/v1/certificates/import", ct: jsonCT, body: `{}`, status: 401, code: "unauthenticated"}},
		"POST /v1/certificates/{id}/revoke": {
			{method: "POST", path: "/v1/certificates/crt-nope/revoke", auth: "operator", ct: jsonCT, body: `{"reason":"REVOCATION_REASON_KEY_COMPROMISE"}`, status: 404, code: "certificate_not_found"},
		},
		"POST /v1/certificates/revoke-citizen": {
			{method: "POST", path: "/v1/certificates/revoke-citizen", ct: jsonCT, body: `{}`, status: 401, code: "unauthenticated"},
		},
		"GET /v1/mail/outbox": {{method: "GET", path: "/v1/mail/outbox?limit=x", status: 400, code: "invalid_argument", field: "limit"}},
		"POST /v1/verify": {
			{method: "POST", path: "/v1/verify", ct: "text/plain", body: "x", status: 400, code: "invalid_argument", field: "Content-Type"},
			{method: "POST", path: "/v1/verify", ct: jsonCT, body: badJSON, status: 400, code: "invalid_argument", field: "body"},
		},

		// The CA's publication (api/rest/pkihttp) and the TSA (api/rest/tsahttp).
		"GET /crl/{name}":    {{method: "GET", path: "/crl/nope.crl", status: 404, code: "unknown_crl"}},
		"GET /ca/{name}":     {{method: "GET", path: "/ca/nope.crt", status: 404, code: "unknown_certificate"}},
		"POST /ocsp":         {{form: protocol, method: "POST", path: "/ocsp", body: "x", status: 200}},
		"POST /ocsp/":        {{form: protocol, method: "POST", path: "/ocsp/", body: "x", status: 200}},
		"GET /ocsp/{req...}": {{form: protocol, method: "GET", path: "/ocsp/!!", status: 200}},
		"/tsa":               {{method: "GET", path: "/tsa", status: 405, code: "method_not_allowed"}},
		"/tsa/certs":         {{method: "POST", path: "/tsa/certs", status: 405, code: "method_not_allowed"}},

		// The CSC API (api/rest/cschttp) keeps the specification's error form.
		"GET /csc/v2/info":                           {{form: succeeds, method: "GET", path: "/csc/v2/info", status: 200}},
		"POST /csc/v2/info":                          {{form: succeeds, method: "POST", path: "/csc/v2/info", status: 200}},
		"POST /csc/v2/credentials/list":              {{form: cscForm, method: "POST", path: "/csc/v2/credentials/list", ct: jsonCT, body: `{}`, status: 401, code: "invalid_token"}},
		"POST /csc/v2/credentials/info":              {{form: cscForm, method: "POST", path: "/csc/v2/credentials/info", auth: "portal", ct: jsonCT, body: `{}`, status: 400, code: "invalid_request"}},
		"POST /csc/v2/credentials/sendOTP":           {{form: cscForm, method: "POST", path: "/csc/v2/credentials/sendOTP", auth: "portal", ct: jsonCT, body: badJSON, status: 400, code: "invalid_request"}},
		"POST /csc/v2/credentials/authorize":         {{form: cscForm, method: "POST", path: "/csc/v2/credentials/authorize", auth: "portal", ct: jsonCT, body: `{}`, status: 400, code: "invalid_request"}},
		"POST /csc/v2/signatures/signHash":           {{form: cscForm, method: "POST", path: "/csc/v2/signatures/signHash", auth: "portal", ct: "text/plain", body: `{}`, status: 415, code: "invalid_request"}},
		"POST /csc/v2/signatures/signDoc":            {{form: cscForm, method: "POST", path: "/csc/v2/signatures/signDoc", auth: "portal", ct: jsonCT, body: `{}`, status: 400, code: "invalid_request"}},
		"POST /csc/v2/signatures/timestamp":          {{form: cscForm, method: "POST", path: "/csc/v2/signatures/timestamp", auth: "portal", ct: jsonCT, body: `{}`, status: 400, code: "invalid_request"}},
		"POST /csc/v2/credentials/getChallenge":      {{form: cscForm, method: "POST", path: "/csc/v2/credentials/getChallenge", ct: jsonCT, body: `{}`, status: 401, code: "invalid_token"}},
		"POST /csc/v2/credentials/authorizeCheck":    {{form: cscForm, method: "POST", path: "/csc/v2/credentials/authorizeCheck", ct: jsonCT, body: `{}`, status: 401, code: "invalid_token"}},
		"POST /csc/v2/credentials/extendTransaction": {{form: cscForm, method: "POST", path: "/csc/v2/credentials/extendTransaction", ct: jsonCT, body: `{}`, status: 401, code: "invalid_token"}},
		"POST /csc/v2/auth/revoke":                   {{form: cscForm, method: "POST", path: "/csc/v2/auth/revoke", ct: jsonCT, body: `{}`, status: 401, code: "invalid_token"}},
		"/csc/v2/":                                   {{form: cscForm, method: "GET", path: "/csc/v2/nope", status: 404, code: "invalid_request"}},
		// Its OAuth 2.0 authorisation server answers in the same form.
		"GET /csc/v2/oauth2/authorize":         {{form: cscForm, method: "GET", path: "/csc/v2/oauth2/authorize", status: 400, code: "invalid_request"}},
		"POST /csc/v2/oauth2/pushed_authorize": {{form: cscForm, method: "POST", path: "/csc/v2/oauth2/pushed_authorize", ct: "application/x-www-form-urlencoded", body: "response_type=code", status: 401, code: "invalid_client"}},
		"POST /csc/v2/oauth2/token":            {{form: cscForm, method: "POST", path: "/csc/v2/oauth2/token", ct: jsonCT, body: "{}", status: 415, code: "invalid_request"}},
		"POST /csc/v2/oauth2/revoke":           {{form: cscForm, method: "POST", path: "/csc/v2/oauth2/revoke", ct: "application/x-www-form-urlencoded", body: "token=x", status: 401, code: "invalid_client"}},

		// FIRe's servlet (api/rest/firehttp) answers in FIRe's form.
		"POST /fire-signature/fireService":             {{form: fireForm, method: "POST", path: "/fire-signature/fireService", ct: "application/x-www-form-urlencoded", body: "op=1", status: 400}},
		"GET /fire-signature/fireService":              {{form: fireForm, method: "GET", path: "/fire-signature/fireService?op=1", status: 400}},
		"GET /fire-signature/fireService/return/ok":    {{form: textPage, method: "GET", path: "/fire-signature/fireService/return/ok", status: 404}},
		"GET /fire-signature/fireService/return/error": {{form: textPage, method: "GET", path: "/fire-signature/fireService/return/error", status: 404}},

		// The description of all of the above (api/rest/openapi).
		"GET /openapi.json": {{form: succeeds, method: "GET", path: "/openapi.json", status: 200}},
		"GET /docs/api":     {{form: succeeds, method: "GET", path: "/docs/api", status: 200}},

		// Not APIs: the citizen's page, probes and metrics.
		"/sign/":              {{form: notAPI}},
		"GET /sandbox/return": {{form: notAPI}},
		"/me":                 {{form: notAPI}},
		"/me/":                {{form: notAPI}},
		"GET /healthz":        {{form: notAPI}},
		"GET /readyz":         {{form: notAPI}},
		"GET /metrics":        {{form: notAPI}},
	}

	patterns := a.mux.Patterns()
	for _, pat := range patterns {
		if _, ok := cases[pat]; !ok {
			t.Errorf("route %q has no case here: add one", pat)
		}
	}
	for pat := range cases {
		if !slices.Contains(patterns, pat) {
			t.Errorf("case for %q, which firmad does not register", pat)
		}
	}
	for _, pat := range patterns {
		for _, c := range cases[pat] {
			if c.form == notAPI {
				continue
			}
			t.Run(pat+" "+c.path, func(t *testing.T) {
				req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
				if err != nil {
					t.Fatal(err)
				}
				if c.ct != "" {
					req.Header.Set("Content-Type", c.ct)
				}
				if c.auth != "" {
					req.Header.Set("Authorization", "Bearer "+creds[c.auth])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != c.status {
					t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, c.status, body)
				}
				switch c.form {
				case problemForm:
					checkProblem(t, resp, body, c)
				case cscForm:
					var m map[string]string
					if err := json.Unmarshal(body, &m); err != nil || len(m) != 2 || m["error"] != c.code || m["error_description"] == "" {
						t.Fatalf("CSC error %s, want error %q", body, c.code)
					}
				case fireForm:
					var m map[string]any
					if err := json.Unmarshal(body, &m); err != nil || len(m) != 2 || m["c"] == nil || m["m"] == "" {
						t.Fatalf("FIRe error %s", body)
					}
				case protocol:
					if ct := resp.Header.Get("Content-Type"); ct != "application/ocsp-response" {
						t.Fatalf("content type %q", ct)
					}
				}
			})
		}
	}
}

// notDescribed are the routes that are no REST API: the citizen's pages.
var notDescribed = []string{"/sign/", "/me", "/me/", "GET /sandbox/return"}

// checkDescribed fails on a route firmad registers that the OpenAPI
// document has no operation for, and on an operation no route serves.
func checkDescribed(t *testing.T, patterns []string) {
	t.Helper()
	doc, _, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, pat := range patterns {
		if slices.Contains(notDescribed, pat) {
			continue
		}
		method, path, ok := strings.Cut(pat, " ")
		if !ok {
			method, path = "", pat
		}
		// The mux's catch-all forms in the document's terms.
		path = strings.ReplaceAll(path, "...}", "}")
		if path == "/csc/v2/" {
			// One path in the document for each depth the catch-all answers.
			path = "/csc/v2/{method}"
			served["GET /csc/v2/{group}/{method}"], served["POST /csc/v2/{group}/{method}"] = true, true
			served["POST "+path] = true
		}
		item := doc.Paths.Find(path)
		if item == nil {
			t.Errorf("route %q is not in the OpenAPI document (api/rest/openapi/spec.yaml)", pat)
			continue
		}
		if method == "" {
			if len(item.Operations()) == 0 {
				t.Errorf("route %q has no operation in the OpenAPI document", pat)
			}
			for m := range item.Operations() {
				served[m+" "+path] = true
			}
			continue
		}
		if item.GetOperation(method) == nil {
			t.Errorf("route %q: the OpenAPI document has %s but no %s", pat, path, method)
		}
		served[method+" "+path] = true
	}
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if !served[m+" "+path] {
				t.Errorf("the OpenAPI document describes %s %s, which firmad does not serve", m, path)
			}
		}
	}
}

// checkProblem checks the one problem shape: type, title, status, detail,
// code and field (when one is at fault), and the /v1 and /api/v1
// extension members only.
func checkProblem(t *testing.T, resp *http.Response, body []byte, c routeCase) {
	t.Helper()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/problem+json" || cc != "no-store" {
		t.Fatalf("Content-Type %q, Cache-Control %q: %s", ct, cc, body)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "title", "status", "detail", "code"} {
		if v, ok := m[k]; !ok || v == "" {
			t.Errorf("member %s missing or empty: %s", k, body)
		}
	}
	extensions := []string{"field", "transaction_id", "reason", "rule", "next_opening"}
	for k := range m {
		if !slices.Contains([]string{"type", "title", "status", "detail", "code"}, k) && !slices.Contains(extensions, k) {
			t.Errorf("member %s is not in the one shape: %s", k, body)
		}
	}
	if m["code"] != c.code || m["status"] != float64(c.status) || m["type"] != "https://firma.cloud/problems/"+c.code ||
		m["title"] != http.StatusText(c.status) {
		t.Errorf("problem %s, want code %q", body, c.code)
	}
	if f, _ := m["field"].(string); f != c.field {
		t.Errorf("field %q, want %q", f, c.field)
	}
}
