package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store/sqlite"
)

const (
	registrarToken  = "registrar-token-5b1c"
	videoAgentToken = "video-agent-token-9e2d"
)

type registryServer struct {
	svc    *api.RegistryService
	outbox *sms.Outbox
	client firmav1.RegistryServiceClient
	http   *httptest.Server
	lis    *bufconn.Listener
	caDir  string
}

// newRegistryServer runs the registry over gRPC (bufconn, behind the
// operator interceptor as firmad runs it) and REST (TLS, asking for client
// certificates), trusting one openssl-made citizen CA. now fixes the
// registry's clock; zero means the real one.
func newRegistryServer(t *testing.T, now time.Time) *registryServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rs := &registryServer{caDir: t.TempDir()}
	opensslIn(t, rs.caDir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/C=ES/O=FNMT test/CN=FNMT test citizens",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	cfg := registry.DefaultConfig()
	cfg.TrustedCAs = []string{filepath.Join(rs.caDir, "ca.pem")}
	cfg.Argon2Time, cfg.Argon2Memory, cfg.Argon2Threads = 1, 8*1024, 1
	cfg.Staff = []registry.StaffToken{
		{Name: "ana", Role: "registrar", TokenSHA256: api.TokenSHA256(registrarToken)},
		{Name: "luis", Role: "video_agent", TokenSHA256: api.TokenSHA256(videoAgentToken)},
	}
	opt, err := cfg.Options()
	if err != nil {
		t.Fatal(err)
	}
	if rs.outbox, err = sms.NewOutbox(db, sms.OutboxOptions{}); err != nil {
		t.Fatal(err)
	}
	opt.SMS, opt.Clock = rs.outbox, func() time.Time { return now }
	if now.IsZero() {
		// Live time: openssl dates the test certificates from it.
		opt.Clock = time.Now
	}
	reg, err := registry.New(db, opt)
	if err != nil {
		t.Fatal(err)
	}
	auth := config.Auth{Operators: []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(operatorToken)}}}
	ops, err := api.NewAuth(auth.Operators)
	if err != nil {
		t.Fatal(err)
	}
	staff, err := api.NewStaffAuth(ops, cfg.Staff)
	if err != nil {
		t.Fatal(err)
	}
	rs.svc = api.NewRegistryService(reg, staff, rs.outbox, slog.New(slog.DiscardHandler))

	opts, err := api.ServerOptions(auth, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	api.RegisterRegistry(gs, rs.svc)
	rs.lis = bufconn.Listen(1 << 20)
	go gs.Serve(rs.lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return rs.lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rs.client = firmav1.NewRegistryServiceClient(conn)

	mux := http.NewServeMux()
	v1http.RegisterRegistry(mux, rs.svc)
	rs.http = httptest.NewUnstartedServer(openapitest.Handler(t, mux))
	rs.http.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	rs.http.StartTLS()
	t.Cleanup(rs.http.Close)
	return rs
}

func opensslIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// citizenCert issues a certificate from the trusted test CA.
func (rs *registryServer) citizenCert(t *testing.T, subject string) tls.Certificate {
	t.Helper()
	os.WriteFile(filepath.Join(rs.caDir, "ext.cnf"), []byte("keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"), 0o600)
	opensslIn(t, rs.caDir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "c.key", "-out", "c.csr", "-utf8", "-subj", subject)
	opensslIn(t, rs.caDir, "x509", "-req", "-in", "c.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
		"-days", "10", "-extfile", "ext.cnf", "-out", "c.pem")
	c, err := tls.LoadX509KeyPair(filepath.Join(rs.caDir, "c.pem"), filepath.Join(rs.caDir, "c.key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func bearerCtx(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// wantRegistryStatus checks a status code and the ErrorInfo reason.
func wantRegistryStatus(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || api.Reason(err) != reason {
		t.Fatalf("got %v (reason %q), want %v %s", err, api.Reason(err), code, reason)
	}
	return st
}

func TestRegistryGRPC(t *testing.T) {
	rs := newRegistryServer(t, time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)) // 21:00 in Madrid
	person := &firmav1.RegisterPersonRequest{Id: "12345678z", GivenName: "Ana", Surnames: "Pérez", Mobile: "612345678", Email: "ana@example.es"}
	tests := []struct {
		name   string
		ctx    context.Context
		call   func(context.Context) error
		code   codes.Code
		reason string
		field  string
	}{
		{name: "in person without token", ctx: context.Background(),
			call: func(ctx context.Context) error { _, err := rs.client.RegisterInPerson(ctx, person); return err },
			code: codes.Unauthenticated, reason: "REGISTRY_ERROR_REASON_STAFF_REQUIRED"},
		{name: "in person with wrong token", ctx: bearerCtx("nope"),
			call: func(ctx context.Context) error { _, err := rs.client.RegisterInPerson(ctx, person); return err },
			code: codes.Unauthenticated, reason: "REGISTRY_ERROR_REASON_STAFF_REQUIRED"},
		{name: "in person by video agent", ctx: bearerCtx(videoAgentToken),
			call: func(ctx context.Context) error { _, err := rs.client.RegisterInPerson(ctx, person); return err },
			code: codes.PermissionDenied, reason: "REGISTRY_ERROR_REASON_POLICY_REFUSED"},
		{name: "invalid DNI letter", ctx: bearerCtx(registrarToken),
			call: func(ctx context.Context) error {
				_, err := rs.client.RegisterInPerson(ctx, &firmav1.RegisterPersonRequest{Id: "12345678A", GivenName: "A", Surnames: "B", Mobile: "612345678", Email: "a@example.es"})
				return err
			},
			code: codes.InvalidArgument, reason: "ERROR_REASON_INVALID_ARGUMENT", field: "id"},
		{name: "video call at 21:00", ctx: bearerCtx(videoAgentToken),
			call: func(ctx context.Context) error { _, err := rs.client.RegisterVideoCall(ctx, person); return err },
			code: codes.FailedPrecondition, reason: "REGISTRY_ERROR_REASON_OUTSIDE_SERVICE_HOURS"},
		{name: "list citizens anonymously", ctx: context.Background(),
			call: func(ctx context.Context) error {
				_, err := rs.client.ListCitizens(ctx, &firmav1.ListCitizensRequest{})
				return err
			},
			code: codes.Unauthenticated, reason: "REGISTRY_ERROR_REASON_STAFF_REQUIRED"},
		{name: "sms outbox by registrar", ctx: bearerCtx(registrarToken),
			call: func(ctx context.Context) error {
				_, err := rs.client.ListSMS(ctx, &firmav1.ListSMSRequest{})
				return err
			},
			code: codes.PermissionDenied, reason: "REGISTRY_ERROR_REASON_STAFF_REQUIRED"},
		{name: "letter without fiscal record", ctx: context.Background(),
			call: func(ctx context.Context) error {
				_, err := rs.client.RequestLetter(ctx, &firmav1.RequestLetterRequest{Id: "12345678Z"})
				return err
			},
			code: codes.FailedPrecondition, reason: "REGISTRY_ERROR_REASON_NO_FISCAL_ADDRESS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := wantRegistryStatus(t, tt.call(tt.ctx), tt.code, tt.reason)
			if tt.field != "" {
				found := false
				for _, d := range st.Details() {
					if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 && br.GetFieldViolations()[0].GetField() == tt.field {
						found = true
					}
				}
				if !found {
					t.Fatalf("no field violation on %s in %v", tt.field, st.Details())
				}
			}
			if tt.reason == "REGISTRY_ERROR_REASON_OUTSIDE_SERVICE_HOURS" && !strings.Contains(st.Message(), "Thursday 2026-11-26 09:00") {
				t.Fatalf("refusal %q does not name the next opening", st.Message())
			}
		})
	}

	// The happy path, as a registrar, then as an operator.
	resp, err := rs.client.RegisterInPerson(bearerCtx(registrarToken), person)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCitizen().GetLevel() != firmav1.RegistrationLevel_REGISTRATION_LEVEL_ADVANCED || resp.GetActivationCode() == "" ||
		!bytes.HasPrefix(resp.GetConfirmationPdf(), []byte("%PDF-")) {
		t.Fatalf("registration %v", resp.GetCitizen())
	}
	c, err := rs.client.GetCitizen(bearerCtx(operatorToken), &firmav1.GetCitizenRequest{Id: "12345678Z"})
	if err != nil || c.GetMobile() != "+34612345678" || c.GetMethod() != firmav1.RegistrationMethod_REGISTRATION_METHOD_IN_PERSON {
		t.Fatalf("get citizen: %v, %v", c, err)
	}
	if _, err := rs.client.SetPassword(context.Background(), &firmav1.SetPasswordRequest{Id: "12345678Z", ActivationCode: resp.GetActivationCode(), Password: "Good7Password"}); err != nil {
		t.Fatal(err)
	}
	_, err = rs.client.SetPassword(context.Background(), &firmav1.SetPasswordRequest{Id: "12345678Z", ActivationCode: resp.GetActivationCode(), Password: "Good7Password"})
	wantRegistryStatus(t, err, codes.FailedPrecondition, "REGISTRY_ERROR_REASON_CODE_USED")

	// Bulk import through the client stream, in small chunks.
	stream, err := rs.client.ImportCitizens(bearerCtx(operatorToken))
	if err != nil {
		t.Fatal(err)
	}
	csv := "id,given_name,surnames,mobile,email,method\n00000000T,Eva,Gil,612000001,eva@example.es,video_call\n00000001T,Bad,Row,612000002,bad@example.es,in_person\n"
	for i := 0; i < len(csv); i += 16 {
		if err := stream.Send(&firmav1.ImportCitizensRequest{CsvChunk: []byte(csv[i:min(i+16, len(csv))])}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if rep.GetCreated() != 1 || len(rep.GetBad()) != 1 || rep.GetBad()[0].GetLine() != 3 {
		t.Fatalf("import report %v", rep)
	}
	list, err := rs.client.ListCitizens(bearerCtx(registrarToken), &firmav1.ListCitizensRequest{Level: firmav1.RegistrationLevel_REGISTRATION_LEVEL_BASIC})
	if err != nil || len(list.GetCitizens()) != 1 || list.GetCitizens()[0].GetId() != "00000000T" {
		t.Fatalf("list basic: %v, %v", list, err)
	}
}

// rest calls the REST interface and decodes a JSON answer into out.
func (rs *registryServer) rest(t *testing.T, client *http.Client, method, path, token, accept string, body any, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, rs.http.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if p, ok := out.(*[]byte); ok {
			*p = b
		} else if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, resp.Header
}

func TestRegistryREST(t *testing.T) {
	rs := newRegistryServer(t, time.Time{})
	client := rs.http.Client()

	// Bad input is problem+json naming the field.
	var prob v1http.Problem
	code, h := rs.rest(t, client, "POST", "/v1/registry/registrations/in-person", registrarToken, "",
		map[string]string{"id": "12345678A", "given_name": "A", "surnames": "B", "mobile": "612345678", "email": "a@example.es"}, &prob)
	if code != 400 || h.Get("Content-Type") != "application/problem+json" || prob.Field != "id" || !strings.Contains(prob.Detail, "check letter") {
		t.Fatalf("bad DNI: %d %s %+v", code, h.Get("Content-Type"), prob)
	}
	code, _ = rs.rest(t, client, "POST", "/v1/registry/registrations/in-person", "", "", map[string]string{"id": "12345678Z"}, &prob)
	if code != 401 {
		t.Fatalf("anonymous in-person: %d %+v", code, prob)
	}
	code, _ = rs.rest(t, client, "POST", "/v1/registry/registrations/in-person", registrarToken, "", map[string]any{"shoe_size": 44}, &prob)
	if code != 400 || prob.Field != "body" {
		t.Fatalf("unknown JSON field: %d %+v", code, prob)
	}

	// In person, the confirmation as a PDF.
	var pdf []byte
	code, h = rs.rest(t, client, "POST", "/v1/registry/registrations/in-person", registrarToken, "application/pdf",
		map[string]string{"id": "12345678Z", "given_name": "Ana", "surnames": "Pérez", "mobile": "612345678", "email": "ana@example.es"}, &pdf)
	if code != 200 || h.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("in-person pdf: %d %s", code, h.Get("Content-Type"))
	}

	// Invitation letter: record, request, read the CSV from the outbox, redeem.
	code, _ = rs.rest(t, client, "PUT", "/v1/registry/fiscal-records/X1234567L", registrarToken, "",
		map[string]string{"given_name": "John", "surnames": "Smith", "fiscal_address": "Calle Luna 5, Valencia"}, &json.RawMessage{})
	if code != 200 {
		t.Fatalf("fiscal record: %d", code)
	}
	if code, _ = rs.rest(t, client, "POST", "/v1/registry/letters", "", "", map[string]string{"id": "X1234567L"}, &json.RawMessage{}); code != 200 {
		t.Fatalf("request letter: %d", code)
	}
	var letters struct {
		Letters []struct{ Body string } `json:"letters"`
	}
	rs.rest(t, client, "GET", "/v1/registry/letters?id=X1234567L", operatorToken, "", nil, &letters)
	m := regexp.MustCompile(`\(CSV\): ([0-9A-Z]{16})`).FindStringSubmatch(letters.Letters[0].Body)
	if m == nil {
		t.Fatalf("letters %+v", letters)
	}
	redeem := map[string]any{"id": "X1234567L", "csv": "0000000000000000", "mobile": "711223344", "email": "john@example.es", "accept_conditions": true}
	code, _ = rs.rest(t, client, "POST", "/v1/registry/letters/redeem", "", "", redeem, &prob)
	if code != 400 || prob.Reason != "REGISTRY_ERROR_REASON_CODE_INVALID" {
		t.Fatalf("wrong CSV: %d %+v", code, prob)
	}
	redeem["csv"] = m[1]
	var reg struct {
		Citizen        struct{ Level string } `json:"citizen"`
		ActivationCode string                 `json:"activation_code"`
	}
	if code, _ = rs.rest(t, client, "POST", "/v1/registry/letters/redeem", "", "", redeem, &reg); code != 200 || reg.Citizen.Level != "REGISTRATION_LEVEL_BASIC" {
		t.Fatalf("redeem: %d %+v", code, reg)
	}
	code, _ = rs.rest(t, client, "POST", "/v1/registry/letters/redeem", "", "", redeem, &prob)
	if code != 409 || prob.Reason != "REGISTRY_ERROR_REASON_CODE_USED" {
		t.Fatalf("reused CSV: %d %+v", code, prob)
	}

	// Electronic certificate in the TLS handshake, then the SMS code.
	cert := rs.citizenCert(t, "/C=ES/serialNumber=IDCES-X1234567L/GN=JOHN/SN=SMITH/CN=SMITH JOHN - X1234567L")
	certClient := rs.clientWith(cert)
	var pending struct {
		PendingID string `json:"pending_id"`
		ID        string `json:"id"`
	}
	if code, _ = rs.rest(t, certClient, "POST", "/v1/registry/certificate/registrations", "", "", map[string]string{"mobile": "711223344"}, &pending); code != 200 || pending.ID != "X1234567L" {
		t.Fatalf("start certificate: %d %+v", code, pending)
	}
	// Without a certificate: refused, naming the field.
	code, _ = rs.rest(t, client, "POST", "/v1/registry/certificate/registrations", "", "", map[string]string{"mobile": "711223344"}, &prob)
	if code != 400 || prob.Field != "certificate" {
		t.Fatalf("no certificate: %d %+v", code, prob)
	}
	var outbox struct {
		Messages []struct{ Text string } `json:"messages"`
	}
	rs.rest(t, client, "GET", "/v1/registry/sms-outbox?to=%2B34711223344&limit=1", operatorToken, "", nil, &outbox)
	sm := regexp.MustCompile(`code is ([0-9A-Z]{4})\.`).FindStringSubmatch(outbox.Messages[0].Text)
	if sm == nil {
		t.Fatalf("outbox %+v", outbox)
	}
	var conf struct {
		Citizen  struct{ Level string } `json:"citizen"`
		Upgraded bool                   `json:"upgraded"`
	}
	code, _ = rs.rest(t, client, "POST", "/v1/registry/certificate/registrations/"+pending.PendingID+"/confirm", "", "",
		map[string]any{"code": sm[1], "email": "john@example.es", "accept_conditions": true}, &conf)
	if code != 200 || conf.Citizen.Level != "REGISTRATION_LEVEL_ADVANCED" || !conf.Upgraded {
		t.Fatalf("confirm certificate: %d %+v", code, conf)
	}
}

func TestRegistryRESTImport(t *testing.T) {
	rs := newRegistryServer(t, time.Time{})
	csv := "id,given_name,surnames,mobile,email,method\n00000000T,Eva,Gil,612000001,eva@example.es,video_call\n00000001T,Bad,Row,612000002,bad@example.es,in_person\n"
	post := func(token, body string) (int, []byte) {
		req, _ := http.NewRequest("POST", rs.http.URL+"/v1/registry/import", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := rs.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := post(registrarToken, csv); code != 403 {
		t.Fatalf("registrar import: %d %s", code, b)
	}
	if code, b := post(operatorToken, "name,shoe_size\n"); code != 400 || !strings.Contains(string(b), "unknown column") {
		t.Fatalf("bad header: %d %s", code, b)
	}
	code, b := post(operatorToken, csv)
	var rep struct {
		Rows, Created int
		Bad           []struct{ Line int }
	}
	if err := json.Unmarshal(b, &rep); err != nil || code != 200 || rep.Rows != 2 || rep.Created != 1 || len(rep.Bad) != 1 || rep.Bad[0].Line != 3 {
		t.Fatalf("import: %d %s", code, b)
	}
}

func TestRegistryRESTUntrustedCertificate(t *testing.T) {
	rs := newRegistryServer(t, time.Time{})
	other := t.TempDir()
	opensslIn(t, other, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "k.pem", "-out", "c.pem", "-days", "5", "-subj", "/C=ES/serialNumber=IDCES-12345678Z/GN=A/SN=B/CN=self-signed")
	cert, err := tls.LoadX509KeyPair(filepath.Join(other, "c.pem"), filepath.Join(other, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client := rs.clientWith(cert)
	var prob v1http.Problem
	code, _ := rs.rest(t, client, "POST", "/v1/registry/certificate/registrations", "", "", map[string]string{"mobile": "612345678"}, &prob)
	if code != 403 || prob.Reason != "REGISTRY_ERROR_REASON_CERTIFICATE_UNTRUSTED" {
		t.Fatalf("untrusted certificate: %d %+v", code, prob)
	}
}

func TestRegistryGRPCClientCertificate(t *testing.T) {
	rs := newRegistryServer(t, time.Time{})
	// A server certificate for 127.0.0.1, and a gRPC server that asks for
	// client certificates without checking them: the registry does.
	dir := t.TempDir()
	opensslIn(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "srv.key", "-out", "srv.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
	srvCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv.key"))
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequestClientCert})))
	api.RegisterRegistry(gs, rs.svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	roots := x509.NewCertPool()
	roots.AddCert(srvCert.Leaf)
	dial := func(certs ...tls.Certificate) firmav1.RegistryServiceClient {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: certs})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return firmav1.NewRegistryServiceClient(conn)
	}
	citizen := rs.citizenCert(t, "/C=ES/serialNumber=IDCES-12345678Z/GN=ANA/SN=PÉREZ GIL/CN=PÉREZ GIL ANA - 12345678Z")
	p, err := dial(citizen).StartCertificateRegistration(context.Background(), &firmav1.StartCertificateRegistrationRequest{Mobile: "612345678"})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetId() != "12345678Z" || p.GetSurnames() != "PÉREZ GIL" {
		t.Fatalf("pending %v", p)
	}
	_, err = dial().StartCertificateRegistration(context.Background(), &firmav1.StartCertificateRegistrationRequest{Mobile: "612345678"})
	wantRegistryStatus(t, err, codes.InvalidArgument, "ERROR_REASON_INVALID_ARGUMENT")
}

func TestRegistryGRPCChallenge(t *testing.T) {
	rs := newRegistryServer(t, time.Time{})
	ctx := context.Background()
	cert := rs.citizenCert(t, "/C=ES/serialNumber=IDCES-12345678Z/GN=ANA/SN=PÉREZ/CN=PÉREZ ANA - 12345678Z")
	ch, err := rs.client.NewChallenge(ctx, &firmav1.NewChallengeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nonce"), ch.GetNonce(), 0o600)
	opensslIn(t, dir, "dgst", "-sha256", "-sign", filepath.Join(rs.caDir, "c.key"), "-out", "sig", "nonce")
	req := &firmav1.StartCertificateRegistrationRequest{Mobile: "612345678", Certificates: [][]byte{cert.Certificate[0]},
		ChallengeId: ch.GetChallengeId(), Nonce: ch.GetNonce(), Signature: mustRead(t, filepath.Join(dir, "sig"))}
	p, err := rs.client.StartCertificateRegistration(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if p.GetId() != "12345678Z" || p.GetGivenName() != "ANA" || p.GetMobile() != "+34******678" {
		t.Fatalf("pending %v", p)
	}
	_, err = rs.client.StartCertificateRegistration(ctx, req)
	wantRegistryStatus(t, err, codes.FailedPrecondition, "REGISTRY_ERROR_REASON_CODE_USED")
	req.Certificates = [][]byte{[]byte("not DER")}
	_, err = rs.client.StartCertificateRegistration(ctx, req)
	wantRegistryStatus(t, err, codes.InvalidArgument, "ERROR_REASON_INVALID_ARGUMENT")
}

// clientWith is a fresh client (no pooled connection) presenting cert.
func (rs *registryServer) clientWith(cert tls.Certificate) *http.Client {
	tr := rs.http.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	return &http.Client{Transport: tr}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
