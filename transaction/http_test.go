package transaction_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/transaction"
)

type restClient struct {
	t   *testing.T
	url string
	key string
}

func (c *restClient) do(method, path string, body any, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set(portalhttp.APIKeyHeader, c.key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func problem(t *testing.T, resp *http.Response, body []byte, status int, code transaction.Code) portalhttp.Problem {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d %s, want %d problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
	}
	var p portalhttp.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Code != code || p.Status != status || p.Type != portalhttp.ProblemTypeBase+string(code) || p.Detail == "" {
		t.Fatalf("problem %+v, want code %s", p, code)
	}
	return p
}

func TestRESTPortalAPI(t *testing.T) {
	e := newEnv(t, nil)
	ca, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede A", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede B", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(openapitest.Handler(t, portalhttp.NewHandler(e.svc, e.portals, nil, 0)))
	defer srv.Close()
	a := &restClient{t: t, url: srv.URL, key: ca.APIKey}
	b := &restClient{t: t, url: srv.URL, key: cb.APIKey}
	anon := &restClient{t: t, url: srv.URL}
	citizen := e.advanced(12345678)
	docs, contents := threeDocs(t)
	var in portalhttp.CreateJSON
	in.SubjectID, in.OKURL, in.ErrorURL = citizen, okURL, errURL
	for _, d := range docs {
		in.Documents = append(in.Documents, portalhttp.DocumentJSON{Name: d.Name, MediaType: d.MediaType, Content: d.Content,
			Digest: d.Digest, Hash: d.Hash, Format: string(d.Format)})
	}

	resp, body := anon.do("POST", "/api/v1/transactions", in, nil)
	problem(t, resp, body, http.StatusUnauthorized, "unauthenticated")
	resp, body = (&restClient{t: t, url: srv.URL, key: ca.APIKey + "x"}).do("POST", "/api/v1/transactions", in, nil)
	problem(t, resp, body, http.StatusUnauthorized, "unauthenticated")

	bad := in
	bad.OKURL = "https://evil.example.com/"
	resp, body = a.do("POST", "/api/v1/transactions", bad, nil)
	if p := problem(t, resp, body, http.StatusBadRequest, transaction.CodeBadRedirect); p.Field != "ok_url" {
		t.Errorf("field %q", p.Field)
	}
	resp, body = a.do("POST", "/api/v1/transactions", map[string]any{"subject_id": citizen, "surprise": 1}, nil)
	problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)
	basicIn := in
	basicIn.SubjectID = e.basic(22222222)
	resp, body = a.do("POST", "/api/v1/transactions", basicIn, nil)
	if p := problem(t, resp, body, http.StatusUnprocessableEntity, transaction.CodeWeakRegistration); !strings.Contains(p.Detail, "advanced") {
		t.Errorf("weak registration detail %q does not say how to reach advanced", p.Detail)
	}

	resp, body = a.do("POST", "/api/v1/transactions", in, map[string]string{"Idempotency-Key": "exp-1"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created portalhttp.CreatedJSON
	json.Unmarshal(body, &created)
	if created.RedirectURL != "https://firma.example.es/sign/"+created.TransactionID || created.State != transaction.StateCreated {
		t.Fatalf("created %+v", created)
	}
	resp, body = a.do("POST", "/api/v1/transactions", in, map[string]string{"Idempotency-Key": "exp-1"})
	var again portalhttp.CreatedJSON
	json.Unmarshal(body, &again)
	if resp.StatusCode != http.StatusOK || again.TransactionID != created.TransactionID {
		t.Fatalf("retried create: %d %s", resp.StatusCode, body)
	}
	id := created.TransactionID

	// Portal B and a wrong subject see nothing.
	resp, body = b.do("GET", "/api/v1/transactions/"+id, nil, nil)
	problem(t, resp, body, http.StatusNotFound, transaction.CodeNotFound)
	resp, body = b.do("POST", "/api/v1/transactions/"+id+"/cancel", nil, nil)
	problem(t, resp, body, http.StatusNotFound, transaction.CodeNotFound)
	resp, body = a.do("GET", "/api/v1/transactions/"+id+"?subject_id="+dni(87654321), nil, nil)
	problem(t, resp, body, http.StatusNotFound, transaction.CodeNotFound)

	resp, body = a.do("GET", "/api/v1/transactions/"+id+"?subject_id="+citizen, nil, nil)
	var st portalhttp.StateJSON
	json.Unmarshal(body, &st)
	if resp.StatusCode != 200 || st.State != transaction.StateCreated || len(st.Documents) != 3 || st.DocumentsProcessed != 0 || st.DocumentsTotal != 3 {
		t.Fatalf("recoverBatchState: %d %s", resp.StatusCode, body)
	}

	sess, code := e.login(id, citizen)
	if _, err := e.approve(id, sess, code); err != nil {
		t.Fatal(err)
	}
	resp, body = a.do("GET", "/api/v1/transactions/"+id+"/result", nil, nil)
	var res portalhttp.ResultJSON
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("recoverBatchResult: %d %s", resp.StatusCode, body)
	}
	if res.State != transaction.StateDone || res.Summary != transaction.SummaryAllSigned || len(res.CertificateChain) < 2 ||
		res.DocumentsProcessed != 3 || res.DocumentsTotal != 3 {
		t.Fatalf("result %+v", res.StateJSON)
	}
	r := &transaction.Results{Chain: res.CertificateChain}
	for _, d := range res.Documents {
		r.Documents = append(r.Documents, transaction.DocumentResult{DocumentState: transaction.DocumentState{Status: d.Status,
			Format: signerFormat(d.Format)}, Signature: d.Signature})
	}
	verifyResults(t, e, r, contents)

	// recoverBatchSign: the signed PDF itself.
	resp, body = a.do("GET", "/api/v1/transactions/"+id+"/documents/2", nil, map[string]string{"Accept": "application/octet-stream"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || !bytes.Equal(body, res.Documents[2].Signature) {
		t.Fatalf("recoverBatchSign: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, body = a.do("GET", "/api/v1/transactions/"+id+"/documents/7", nil, nil)
	problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)
	resp, body = a.do("POST", "/api/v1/transactions/"+id+"/cancel", nil, nil)
	problem(t, resp, body, http.StatusConflict, transaction.CodeAlreadyUsed)

	// sign: FIRe's single-document operation.
	one := portalhttp.CreateJSON{SubjectID: citizen, OKURL: okURL, ErrorURL: errURL, Document: &portalhttp.DocumentJSON{Name: "uno.txt", Content: []byte("uno")}}
	resp, body = a.do("POST", "/api/v1/sign", one, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign: %d %s", resp.StatusCode, body)
	}
	one.Documents = []portalhttp.DocumentJSON{{Name: "dos", Content: []byte("dos")}}
	resp, body = a.do("POST", "/api/v1/sign", one, nil)
	problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)

	// FIRe's three steps.
	resp, body = a.do("POST", "/api/v1/batches", portalhttp.CreateJSON{SubjectID: citizen, OKURL: okURL, ErrorURL: errURL, StopOnError: true}, nil)
	var draft portalhttp.CreatedJSON
	json.Unmarshal(body, &draft)
	if resp.StatusCode != http.StatusCreated || draft.State != transaction.StateDraft || draft.RedirectURL != "" {
		t.Fatalf("createBatch: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("POST", "/api/v1/batches/"+draft.TransactionID+"/sign", nil, nil)
	problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)
	resp, body = a.do("POST", "/api/v1/batches/"+draft.TransactionID+"/documents", portalhttp.DocumentJSON{Name: "uno.txt", Content: []byte("uno b")}, nil)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"index":0`) {
		t.Fatalf("addDocumentToBatch: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do("POST", "/api/v1/batches/"+draft.TransactionID+"/documents", portalhttp.DocumentJSON{Name: "dos", Content: []byte("dos")}, nil)
	problem(t, resp, body, http.StatusNotFound, transaction.CodeNotFound)
	resp, body = a.do("POST", "/api/v1/batches/"+draft.TransactionID+"/sign", nil, nil)
	var signedBatch portalhttp.CreatedJSON
	json.Unmarshal(body, &signedBatch)
	if resp.StatusCode != 200 || signedBatch.State != transaction.StateCreated || !strings.HasSuffix(signedBatch.RedirectURL, "/sign/"+draft.TransactionID) {
		t.Fatalf("signBatch: %d %s", resp.StatusCode, body)
	}

	resp, body = a.do("GET", "/api/v1/transactions?state=done", nil, nil)
	var list struct{ Transactions []portalhttp.StateJSON }
	json.Unmarshal(body, &list)
	if resp.StatusCode != 200 || len(list.Transactions) != 1 || list.Transactions[0].TransactionID != id {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
}

func signerFormat(s string) signer.Format { return signer.Format(s) }
