package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest/v1http"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/store/sqlite"
)

// mailServer serves MailService over gRPC (behind the operator
// interceptor, as in firmad) and REST.
func mailServer(t *testing.T, outbox api.MailReader) (firmav1.MailServiceClient, *httptest.Server) {
	t.Helper()
	auth, err := api.NewAuth([]config.Operator{{Name: "ops", TokenSHA256: api.TokenSHA256(operatorToken)}})
	if err != nil {
		t.Fatal(err)
	}
	svc := api.NewMailService(outbox, auth, nil)
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(auth.Unary))
	svc.Register(gs)
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
	v1http.RegisterMail(mux, svc)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return firmav1.NewMailServiceClient(conn), hs
}

func TestMailServiceListEmails(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	outbox, err := mail.NewOutbox(db, mail.OutboxOptions{Clock: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"ana@example.es", "luis@example.es", "ana@example.es"} {
		if err := outbox.Send(ctx, to, "Cl@ve Firma: aviso", "Se firmó 1 documento para "+to); err != nil {
			t.Fatal(err)
		}
	}
	client, hs := mailServer(t, outbox)
	operator := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+operatorToken)
	stranger := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer not-an-operator")

	tests := []struct {
		name   string
		ctx    context.Context
		req    *firmav1.ListEmailsRequest
		code   codes.Code
		reason firmav1.ErrorReason
		n      int
	}{
		{"all", operator, &firmav1.ListEmailsRequest{}, codes.OK, 0, 3},
		{"one address", operator, &firmav1.ListEmailsRequest{To: "ana@example.es"}, codes.OK, 0, 2},
		{"bounded", operator, &firmav1.ListEmailsRequest{Limit: 1}, codes.OK, 0, 1},
		{"no credentials", ctx, &firmav1.ListEmailsRequest{}, codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, 0},
		{"wrong token", stranger, &firmav1.ListEmailsRequest{}, codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, 0},
		{"bad address", operator, &firmav1.ListEmailsRequest{To: "Ana <ana@example.es>"}, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, 0},
		{"limit too large", operator, &firmav1.ListEmailsRequest{Limit: 5000}, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.ListEmails(tc.ctx, tc.req)
			if tc.code != codes.OK {
				wantStatus(t, err, tc.code, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetMessages()) != tc.n {
				t.Fatalf("%d messages, want %d", len(resp.GetMessages()), tc.n)
			}
			m := resp.GetMessages()[0]
			if m.GetSubject() != "Cl@ve Firma: aviso" || m.GetText() != "Se firmó 1 documento para "+m.GetTo() || m.GetId() == "" ||
				m.GetCreatedAt().AsTime().Before(time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)) {
				t.Errorf("newest message %v", m)
			}
			if tc.req.GetTo() == "" && tc.req.GetLimit() == 0 && resp.GetMessages()[0].GetTo() != "ana@example.es" {
				t.Errorf("not newest first: %v", resp.GetMessages())
			}
		})
	}

	rest := []struct {
		name, query, token string
		status             int
		n                  int
	}{
		{"all", "", operatorToken, http.StatusOK, 3},
		{"one address", "?to=luis%40example.es", operatorToken, http.StatusOK, 1},
		{"no token", "", "", http.StatusUnauthorized, 0},
		{"bad limit", "?limit=x", operatorToken, http.StatusBadRequest, 0},
		{"bad address", "?to=nobody", operatorToken, http.StatusBadRequest, 0},
	}
	for _, tc := range rest {
		t.Run("rest "+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/mail/outbox"+tc.query, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status != http.StatusOK {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				return
			}
			var out struct {
				Messages []struct{ To, Subject, Text string } `json:"messages"`
			}
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) != tc.n || out.Messages[0].Subject != "Cl@ve Firma: aviso" {
				t.Errorf("messages %+v", out.Messages)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

// With the SMTP gateway there is no outbox to read.
func TestMailServiceWithoutOutbox(t *testing.T) {
	client, _ := mailServer(t, nil)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+operatorToken)
	_, err := client.ListEmails(ctx, &firmav1.ListEmailsRequest{})
	wantStatus(t, err, codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_UNSUPPORTED)
}
