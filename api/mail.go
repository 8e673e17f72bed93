package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/store"
)

// MailService authenticates its callers itself, so that its REST route
// (which does not pass through the gRPC interceptors) is checked the same
// way as its gRPC method.
func init() {
	for _, m := range firmav1.MailService_ServiceDesc.Methods {
		publicMethods["/"+firmav1.MailService_ServiceDesc.ServiceName+"/"+m.MethodName] = true
	}
}

// maxOutboxPage bounds one ListEmails answer.
const maxOutboxPage = 1000

// MailReader is the part of the outbox mail gateway ListEmails reads;
// *mail.Outbox is one.
type MailReader interface {
	Messages(ctx context.Context, to string, limit int) ([]*store.Email, error)
}

var _ MailReader = (*mail.Outbox)(nil)

// MailService implements firmav1.MailServiceServer: operators read the
// mail outbox.
type MailService struct {
	firmav1.UnimplementedMailServiceServer
	outbox    MailReader
	operators *Auth
	log       *slog.Logger
}

var _ firmav1.MailServiceServer = (*MailService)(nil)

// NewMailService returns the service; outbox is nil when the configured
// gateway really sends.
func NewMailService(outbox MailReader, operators *Auth, log *slog.Logger) *MailService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if operators == nil {
		operators = &Auth{}
	}
	return &MailService{outbox: outbox, operators: operators, log: log}
}

// Register registers the service on s.
func (s *MailService) Register(g *grpc.Server) { firmav1.RegisterMailServiceServer(g, s) }

// ListEmails implements firmav1.MailServiceServer.
func (s *MailService) ListEmails(ctx context.Context, req *firmav1.ListEmailsRequest) (*firmav1.ListEmailsResponse, error) {
	op, ok := s.operators.Authenticate(ctx)
	if !ok {
		return nil, unauthenticated()
	}
	if s.outbox == nil {
		return nil, newStatus(codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_UNSUPPORTED,
			"the mail gateway is not the outbox: messages are really sent", nil)
	}
	if req.GetLimit() < 0 || req.GetLimit() > maxOutboxPage {
		return nil, invalidArg("limit", "must be 0 (the default, 100) to "+strconv.Itoa(maxOutboxPage))
	}
	if to := req.GetTo(); to != "" {
		if err := mail.Check(to, "s", "t"); err != nil {
			return nil, invalidArg("to", "must be a bare e-mail address such as ana@example.es")
		}
	}
	msgs, err := s.outbox.Messages(ctx, req.GetTo(), int(req.GetLimit()))
	if err != nil {
		return nil, toStatus(ctx, s.log, "ListEmails", err)
	}
	s.log.InfoContext(ctx, "mail outbox read", "operator", op, "messages", len(msgs))
	resp := &firmav1.ListEmailsResponse{}
	for _, m := range msgs {
		resp.Messages = append(resp.Messages, &firmav1.Email{Id: m.ID, To: m.To, Subject: m.Subject, Text: m.Text,
			CreatedAt: timestamppb.New(m.CreatedAt)})
	}
	return resp, nil
}

// RegisterHTTP mounts the REST route on mux:
//
//	operators (Authorization: Bearer <operator token>, or mTLS)
//	GET /v1/mail/outbox?to=&limit=     ListEmails
//
// Responses are the proto JSON of ListEmailsResponse; errors are
// application/problem+json.
func (s *MailService) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/mail/outbox", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := &firmav1.ListEmailsRequest{To: q.Get("to")}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxOutboxPage {
				writeProblem(w, invalidArg("limit", "must be a number from 0 to "+strconv.Itoa(maxOutboxPage)))
				return
			}
			req.Limit = int32(n)
		}
		resp, err := s.ListEmails(callContext(r), req)
		if err != nil {
			writeProblem(w, err)
			return
		}
		writeResult(w, r, resp, nil)
	})
}
