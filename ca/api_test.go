package ca_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
)

// grpcClient serves CertificateService over loopback TCP for e.
func (e *env) grpcClient() firmav1.CertificateServiceClient {
	e.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterCertificates(srv, e.ca, nil)
	go srv.Serve(lis)
	e.t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return firmav1.NewCertificateServiceClient(conn)
}

func caError(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Metadata["ca_error"]
		}
	}
	return ""
}

func TestCertificateServiceGRPC(t *testing.T) {
	e := newEnv(t, nil)
	c := e.grpcClient()
	ctx := context.Background()

	e.advanced("12345678Z", "Juan", "Español")
	if _, err := c.EnsureCertificate(ctx, &firmav1.EnsureCertificateRequest{CitizenId: "12345678Z"}); status.Code(err) != codes.FailedPrecondition || caError(err) != "ca_not_initialised" {
		t.Fatalf("before init: %v, want FailedPrecondition ca_not_initialised", err)
	}
	e.init()
	basicReg, err := registry.New(e.db, registry.Options{SMS: mustOutbox(t, e.db), Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1},
		Clock: func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := basicReg.RegisterVideoCall(ctx, registry.Staff{Name: "agent", Role: policy.VideoAgent},
		registry.Person{ID: "23456789D", GivenName: "Lucía", Surnames: "Gómez", Mobile: "+34611111111", Email: "lucia@example.es"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		call    func() error
		code    codes.Code
		caErr   string
		message string
	}{
		{"empty citizen", func() error {
			_, err := c.EnsureCertificate(ctx, &firmav1.EnsureCertificateRequest{})
			return err
		}, codes.InvalidArgument, "", "citizen_id"},
		{"bad characters", func() error {
			_, err := c.IssueCertificate(ctx, &firmav1.IssueCertificateRequest{CitizenId: "1234;DROP"})
			return err
		}, codes.InvalidArgument, "", "citizen_id"},
		{"basic citizen", func() error {
			_, err := c.EnsureCertificate(ctx, &firmav1.EnsureCertificateRequest{CitizenId: "23456789D"})
			return err
		}, codes.FailedPrecondition, "advanced_level_required", "register in person"},
		{"unknown citizen", func() error {
			_, err := c.EnsureCertificate(ctx, &firmav1.EnsureCertificateRequest{CitizenId: "45678901G"})
			return err
		}, codes.NotFound, "citizen_not_found", "citizen not registered"},
		{"unknown certificate", func() error {
			_, err := c.GetCertificate(ctx, &firmav1.GetCertificateRequest{Id: "crt-00"})
			return err
		}, codes.NotFound, "certificate_not_found", "certificate not found"},
		{"bad reason", func() error {
			_, err := c.RevokeCertificate(ctx, &firmav1.RevokeCertificateRequest{Id: "crt-00", Reason: 6})
			return err
		}, codes.InvalidArgument, "", "reason"},
		{"import garbage", func() error {
			_, err := c.ImportCertificate(ctx, &firmav1.ImportCertificateRequest{Pem: "-----BEGIN X-----\nAAAA\n-----END X-----\n"})
			return err
		}, codes.InvalidArgument, "", "pem"},
		{"import in internal mode", func() error {
			_, err := c.ImportCertificate(ctx, &firmav1.ImportCertificateRequest{Der: e.ca.Issuing().Raw})
			return err
		}, codes.FailedPrecondition, "wrong_mode", "external"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || caError(err) != tc.caErr || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("got %v (ca_error %q), want %s, %q, message with %q", err, caError(err), tc.code, tc.caErr, tc.message)
			}
		})
	}

	issued, err := c.EnsureCertificate(ctx, &firmav1.EnsureCertificateRequest{CitizenId: "12345678Z"})
	if err != nil {
		t.Fatal(err)
	}
	cert := issued.GetCertificate()
	if cert.GetStatus() != firmav1.CertificateStatus_CERTIFICATE_STATUS_VALID || !strings.HasPrefix(cert.GetPem(), "-----BEGIN CERTIFICATE-----") ||
		!strings.Contains(cert.GetSubject(), "SERIALNUMBER=IDCES-12345678Z") {
		t.Fatalf("issued %v", cert)
	}
	if _, err := c.IssueCertificate(ctx, &firmav1.IssueCertificateRequest{CitizenId: "12345678Z"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second issue: %v, want AlreadyExists", err)
	}
	renewed, err := c.RenewCertificate(ctx, &firmav1.RenewCertificateRequest{CitizenId: "12345678Z"})
	if err != nil {
		t.Fatal(err)
	}
	// Two certificates, fetched one per page.
	var ids []string
	token := ""
	for {
		page, err := c.ListCertificates(ctx, &firmav1.ListCertificatesRequest{CitizenId: "12345678Z", PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range page.GetCertificates() {
			ids = append(ids, x.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(ids) != 2 {
		t.Fatalf("listed %v, want 2 certificates", ids)
	}
	rev, err := c.RevokeCertificate(ctx, &firmav1.RevokeCertificateRequest{Id: renewed.GetCertificate().GetSerial(),
		Reason: firmav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE})
	if err != nil {
		t.Fatal(err)
	}
	if rev.GetCertificate().GetRevocationReason() != firmav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE {
		t.Errorf("revoked %v", rev.GetCertificate())
	}
	_, err = c.RevokeCertificate(ctx, &firmav1.RevokeCertificateRequest{Id: renewed.GetCertificate().GetId()})
	if status.Code(err) != codes.FailedPrecondition || caError(err) != "already_revoked" {
		t.Errorf("second revoke: %v", err)
	}
	chain, err := c.GetCAChain(ctx, &firmav1.GetCAChainRequest{})
	if err != nil || strings.Count(chain.GetPem(), "BEGIN CERTIFICATE") != 2 || chain.GetMode() != "internal" {
		t.Errorf("chain %v, %v", chain, err)
	}
}

func TestCertificateServiceREST(t *testing.T) {
	e := newEnv(t, nil)
	l := e.audited()
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	const token = "rest-operator-token"
	auth, err := api.NewAuth([]config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(token)}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	v1http.RegisterCertificates(mux, api.NewCertificateService(e.ca, nil), auth)
	srv := httptest.NewServer(openapitest.Handler(t, mux))
	t.Cleanup(srv.Close)

	call := func(method, path, body, tok string) (int, string, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), m
	}

	tests := []struct {
		name, method, path, body, token string
		status                          int
		problem                         string // a problem document whose detail or field holds this
	}{
		{"no token", "GET", "/v1/certificates", "", "", 401, "operator"},
		{"wrong token", "POST", "/v1/certificates/ensure", `{"citizen_id":"12345678Z"}`, "nope", 401, "operator"},
		{"bad json", "POST", "/v1/certificates/ensure", `{"citizen":`, token, 400, "body"},
		{"bad status", "GET", "/v1/certificates?status=lost", "", token, 400, "status"},
		{"unknown certificate", "GET", "/v1/certificates/crt-none", "", token, 404, "certificate not found"},
		{"bad reason", "POST", "/v1/certificates/crt-none/revoke", `{"reason":"REVOCATION_REASON_HOLD"}`, token, 400, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, ct, m := call(tc.method, tc.path, tc.body, tc.token)
			if code != tc.status || ct != "application/problem+json" {
				t.Fatalf("%d %s, want %d problem+json", code, ct, tc.status)
			}
			if d, f := fmt.Sprint(m["detail"]), fmt.Sprint(m["field"]); !strings.Contains(d+" "+f, tc.problem) {
				t.Errorf("problem %v does not mention %q", m, tc.problem)
			}
		})
	}

	code, _, m := call("POST", "/v1/certificates/ensure", `{"citizen_id":"12345678Z"}`, token)
	cert, _ := m["certificate"].(map[string]any)
	if code != 200 || cert["status"] != "CERTIFICATE_STATUS_VALID" || !strings.HasPrefix(fmt.Sprint(cert["pem"]), "-----BEGIN CERTIFICATE") {
		t.Fatalf("ensure: %d %v", code, m)
	}
	// The audit record names the operator who asked.
	issuedRecs := records(t, e, l, audit.Filter{KeyID: fmt.Sprint(cert["key_id"]), Events: []audit.Event{audit.CertificateIssued}})
	if len(issuedRecs) != 1 || issuedRecs[0].Actor != (audit.Actor{Role: audit.RoleAdmin, ID: "op"}) {
		t.Errorf("issued records %+v, want one by admin op", issuedRecs)
	}
	code, _, m = call("POST", "/v1/certificates/"+fmt.Sprint(cert["serial"])+"/revoke", `{"reason":"REVOCATION_REASON_KEY_COMPROMISE"}`, token)
	if rc, _ := m["certificate"].(map[string]any); code != 200 || rc["status"] != "CERTIFICATE_STATUS_REVOKED" {
		t.Fatalf("revoke: %d %v", code, m)
	}
	code, _, m = call("GET", "/v1/certificates?citizen_id=12345678Z&status=revoked", "", token)
	if list, _ := m["certificates"].([]any); code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %v", code, m)
	}
	code, _, m = call("GET", "/v1/ca/chain", "", token)
	if code != 200 || strings.Count(fmt.Sprint(m["pem"]), "BEGIN CERTIFICATE") != 2 {
		t.Fatalf("chain: %d %v", code, m)
	}
}
