package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// verifyFixture is a VerifyService over gRPC (in memory) and REST, trusting
// a test PKI, with a signed PDF and a CAdES signature made on its keys.
type verifyFixture struct {
	client firmav1.VerifyServiceClient
	rest   string
	pdf    []byte
	doc    []byte
	cades  []byte
	// counter is cades countersigned.
	counter []byte
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	ctx := context.Background()
	pki := testpki.New(t)
	v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: &verify.Online{}})
	if err != nil {
		t.Fatal(err)
	}
	svc := api.NewVerifyService(v, slog.New(slog.DiscardHandler))
	gs := grpc.NewServer()
	firmav1.RegisterVerifyServiceServer(gs, svc)
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	mux := http.NewServeMux()
	v1http.RegisterVerify(mux, svc)
	hs := httptest.NewServer(openapitest.Handler(t, mux))
	t.Cleanup(hs.Close)

	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	opt := signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}
	plain, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := signer.PAdES(ctx, plain, key, chain, opt, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte("Solicitud 2026/77")
	popt := opt
	popt.Policy = &signer.PolicyAGE
	cades, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, popt)
	if err != nil {
		t.Fatal(err)
	}
	counter, err := signer.CounterSign(ctx, cades, key, chain, opt)
	if err != nil {
		t.Fatal(err)
	}
	return &verifyFixture{client: firmav1.NewVerifyServiceClient(conn), rest: hs.URL, pdf: pdf, doc: doc, cades: cades, counter: counter}
}

func TestVerifyServiceGRPC(t *testing.T) {
	f := newVerifyFixture(t)
	d := sha256.Sum256(f.doc)
	pemSig := pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: f.cades})
	changed := bytes.Clone(f.doc)
	changed[0] ^= 1
	tests := []struct {
		name    string
		req     *firmav1.VerifyRequest
		verdict firmav1.Verdict
		format  string
	}{
		{"pades", &firmav1.VerifyRequest{Signature: f.pdf}, firmav1.Verdict_VERDICT_VALID, "pades"},
		{"cades with content", &firmav1.VerifyRequest{Signature: f.cades, Signed: &firmav1.VerifyRequest_Content{Content: f.doc}}, firmav1.Verdict_VERDICT_VALID, "cades"},
		{"cades with digest", &firmav1.VerifyRequest{Signature: f.cades, Signed: &firmav1.VerifyRequest_Digest{Digest: d[:]}}, firmav1.Verdict_VERDICT_VALID, "cades"},
		{"cades in pem", &firmav1.VerifyRequest{Signature: pemSig, Signed: &firmav1.VerifyRequest_Content{Content: f.doc}}, firmav1.Verdict_VERDICT_VALID, "cades"},
		{"changed content", &firmav1.VerifyRequest{Signature: f.cades, Signed: &firmav1.VerifyRequest_Content{Content: changed}}, firmav1.Verdict_VERDICT_INVALID, "cades"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := f.client.Verify(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetVerdict() != tc.verdict || len(resp.GetSignatures()) != 1 {
				t.Fatalf("verdict %v, %d signatures: %v", resp.GetVerdict(), len(resp.GetSignatures()), resp)
			}
			s := resp.GetSignatures()[0]
			if s.GetFormat() != tc.format || s.GetLevel() != "B-T" || len(s.GetChecks()) < 5 || s.GetTimestampTime() == nil {
				t.Fatalf("report: %v", s)
			}
			for _, c := range s.GetChecks() {
				if c.GetStatus() == firmav1.CheckStatus_CHECK_STATUS_UNSPECIFIED || c.GetReason() == "" {
					t.Errorf("check %v", c)
				}
			}
			if p := s.GetPolicy(); tc.format == "cades" && (p.GetName() != "FirmaAGE" || p.GetOid() != "2.16.724.1.3.1.1.2.1.9" || p.GetHashAlgorithm() != "SHA-1") {
				t.Errorf("policy reported: %v", p)
			}
		})
	}
	t.Run("countersigned", func(t *testing.T) {
		resp, err := f.client.Verify(context.Background(), &firmav1.VerifyRequest{Signature: f.counter, Signed: &firmav1.VerifyRequest_Content{Content: f.doc}})
		if err != nil {
			t.Fatal(err)
		}
		ss := resp.GetSignatures()
		if resp.GetVerdict() != firmav1.Verdict_VERDICT_VALID || len(ss) != 2 || ss[0].GetCountersignatureOf() != 0 || ss[1].GetCountersignatureOf() != 1 {
			t.Fatalf("countersigned: %v", resp)
		}
	})

	bad := []struct {
		name  string
		req   *firmav1.VerifyRequest
		field string
	}{
		{"no signature", &firmav1.VerifyRequest{}, "signature"},
		{"garbage", &firmav1.VerifyRequest{Signature: []byte("hello"), Signed: &firmav1.VerifyRequest_Content{Content: f.doc}}, ""},
		{"pdf without signatures", &firmav1.VerifyRequest{Signature: []byte("%PDF-1.7\n")}, ""},
		{"pdf with content", &firmav1.VerifyRequest{Signature: f.pdf, Signed: &firmav1.VerifyRequest_Content{Content: f.doc}}, "content"},
		{"short digest", &firmav1.VerifyRequest{Signature: f.cades, Signed: &firmav1.VerifyRequest_Digest{Digest: d[:5]}}, ""},
		{"detached without content", &firmav1.VerifyRequest{Signature: f.cades}, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client.Verify(context.Background(), tc.req)
			wantStatus(t, err, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
		})
	}
}

func TestVerifyServiceREST(t *testing.T) {
	f := newVerifyFixture(t)
	post := func(t *testing.T, ctype string, body []byte) (int, string, map[string]any) {
		t.Helper()
		resp, err := http.Post(f.rest+"/v1/verify", ctype, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("decode: %v", err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), m
	}
	jsonReq, _ := json.Marshal(map[string]string{
		"signature": base64.StdEncoding.EncodeToString(f.cades),
		"content":   base64.StdEncoding.EncodeToString(f.doc),
	})
	tests := []struct {
		name    string
		ctype   string
		body    []byte
		code    int
		verdict string
		reason  string
	}{
		{"pdf body", "application/pdf", f.pdf, 200, "VERDICT_VALID", ""},
		{"json cades", "application/json", jsonReq, 200, "VERDICT_VALID", ""},
		{"json garbage", "application/json", []byte(`{"signature":"aGVsbG8=","content":"aGVsbG8="}`), 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
		{"not json", "application/json", []byte(`{`), 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
		{"wrong type", "text/plain", []byte(`x`), 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
		{"pdf prefix is not pdf", "application/pdfx", f.pdf, 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
		{"malformed type", "application/pdf;;", f.pdf, 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
		{"type with parameters", "Application/PDF; name=doc.pdf", f.pdf, 200, "VERDICT_VALID", ""},
		{"over the size limit", "application/pdf", bytes.Repeat([]byte("%"), api.MaxVerifyBytes+1), 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
		{"pdf without signatures", "application/pdf", []byte("%PDF-1.7\n%%EOF\n"), 400, "", "ERROR_REASON_INVALID_ARGUMENT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, ctype, m := post(t, tc.ctype, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %v", code, tc.code, m)
			}
			if tc.code == 200 {
				if ctype != "application/json" || m["verdict"] != tc.verdict {
					t.Fatalf("%s %v", ctype, m)
				}
				sigs, _ := m["signatures"].([]any)
				if len(sigs) != 1 {
					t.Fatalf("signatures: %v", m)
				}
				if checks, _ := sigs[0].(map[string]any)["checks"].([]any); len(checks) < 5 {
					t.Fatalf("checks: %v", sigs[0])
				}
				return
			}
			if ctype != "application/problem+json" || m["reason"] != tc.reason || m["detail"] == "" {
				t.Fatalf("problem: %s %v", ctype, m)
			}
		})
	}
}

// VerifyService is public: behind the operator authentication that guards
// the other services, a caller without credentials still verifies.
func TestVerifyServiceIsPublic(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := api.ServerOptions(config.Auth{Operators: []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(operatorToken)}}},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	firmav1.RegisterVerifyServiceServer(gs, api.NewVerifyService(v, nil))
	firmav1.RegisterKeyServiceServer(gs, &firmav1.UnimplementedKeyServiceServer{})
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	sig, err := signer.CAdESDocument(ctx, bytes.NewReader([]byte("x")), key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := firmav1.NewVerifyServiceClient(conn).Verify(ctx, &firmav1.VerifyRequest{Signature: sig, Signed: &firmav1.VerifyRequest_Content{Content: []byte("x")}})
	if err != nil {
		t.Fatalf("anonymous Verify: %v", err)
	}
	// No revocation checker: the verdict is indeterminate, but it is a report.
	if len(resp.GetSignatures()) != 1 || resp.GetSignatures()[0].GetChecks()[0].GetStatus() != firmav1.CheckStatus_CHECK_STATUS_PASSED {
		t.Fatalf("report: %v", resp)
	}
	// The other services still want an operator.
	_, err = firmav1.NewKeyServiceClient(conn).ListKeys(ctx, &firmav1.ListKeysRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous ListKeys: %v", err)
	}
}
