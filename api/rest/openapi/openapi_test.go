package openapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/api/rest/openapi"
	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
)

var update = flag.Bool("update", false, "rewrite openapi.json from spec.yaml and the proto descriptors")

// The document kin-openapi loads is valid OpenAPI 3.1, and the copy in the
// repository is the one served.
func TestDocument(t *testing.T) {
	doc, _, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	// Every operation has an id (the page's anchors) and a response.
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" || ids[op.OperationID] && method != http.MethodGet {
				t.Errorf("%s %s: operationId %q missing or repeated", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Responses == nil || op.Responses.Len() == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
		}
	}
	// The /v1 operations got their messages from the descriptors.
	reg := doc.Paths.Find("/v1/registry/registrations/in-person").Post
	if got := reg.Responses.Status(200).Value.Content.Get("application/json").Schema.Ref; got != "#/components/schemas/firma.v1.RegistrationResponse" {
		t.Errorf("RegisterInPerson answers %q", got)
	}
	if got := reg.RequestBody.Value.Content.Get("application/json").Schema.Ref; got != "#/components/schemas/firma.v1.RegisterPersonRequest" {
		t.Errorf("RegisterInPerson takes %q", got)
	}
	// The callback is documented with its header and algorithm.
	hook := doc.Webhooks["transactionEnded"]
	if hook == nil || hook.Post == nil || hook.Post.Parameters.GetByInAndName("header", "Firma-Signature") == nil {
		t.Fatal("no transactionEnded webhook with the Firma-Signature header")
	}
	if !strings.Contains(doc.Info.Description, "HMAC-SHA256") {
		t.Error("the description does not name the callback's algorithm")
	}

	built, err := openapi.Document()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi.json", built, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kept, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kept, built) {
		t.Fatal("openapi.json differs from the served document: go test ./api/rest/openapi -run TestDocument -update")
	}
}

// The page and the document are served, as the document itself says, and
// the page loads nothing from anywhere.
func TestServed(t *testing.T) {
	mux := rest.NewMux()
	if err := openapi.Register(mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(openapitest.Handler(t, mux))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return resp, b
	}
	_, raw := get("/openapi.json")
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	resp, page := get("/docs/api")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`(?i)<script`), regexp.MustCompile(`(?i)\bsrc=`),
		regexp.MustCompile(`(?i)<link`), regexp.MustCompile(`(?i)@import`), regexp.MustCompile(`(?i)url\(`)} {
		if bad.Match(page) {
			t.Errorf("the page has %s", bad)
		}
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if strings.HasPrefix(method, "x-") || method == "parameters" {
				continue
			}
			if !bytes.Contains(page, []byte(`id="op-`+op.OperationID+`"`)) || !bytes.Contains(page, []byte("<code>"+path+"</code>")) {
				t.Errorf("the page lacks %s %s (%s)", method, path, op.OperationID)
			}
		}
	}
	for _, want := range []string{"Firma-Signature", "HMAC-SHA256", `id="schema-firma.v1.Citizen"`, `id="schema-PortalProblem"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
