package api

import (
	"context"
	"log/slog"
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

// MaxOutboxPage bounds one ListEmails answer.
const MaxOutboxPage = 1000

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
	if req.GetLimit() < 0 || req.GetLimit() > MaxOutboxPage {
		return nil, invalidArg("limit", "must be 0 (the default, 100) to "+strconv.Itoa(MaxOutboxPage))
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
