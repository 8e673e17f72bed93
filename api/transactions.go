package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// TransactionService is called by portals, not operators: the operator
// interceptor lets its methods through and each authenticates the portal.
func init() {
	for _, m := range firmav1.TransactionService_ServiceDesc.Methods {
		publicMethods["/"+firmav1.TransactionService_ServiceDesc.ServiceName+"/"+m.MethodName] = true
	}
}

// PortalAPIKeyMetadata is the gRPC metadata key of a portal's API key
// ("authorization: Bearer <key>" works too).
const PortalAPIKeyMetadata = "x-api-key"

// TransactionService implements firmav1.TransactionServiceServer on the
// transaction service.
type TransactionService struct {
	firmav1.UnimplementedTransactionServiceServer
	svc  *transaction.Service
	auth portal.Authenticator
	log  *slog.Logger
}

var _ firmav1.TransactionServiceServer = (*TransactionService)(nil)

// NewTransactionService returns the portal gRPC API.
func NewTransactionService(svc *transaction.Service, auth portal.Authenticator, log *slog.Logger) *TransactionService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TransactionService{svc: svc, auth: auth, log: log}
}

// RegisterTransactions registers TransactionService on s.
func RegisterTransactions(s *grpc.Server, svc *TransactionService) {
	firmav1.RegisterTransactionServiceServer(s, svc)
}

// portal authenticates the calling portal by API key or verified client
// certificate, and checks app_id if the request names one.
func (s *TransactionService) portal(ctx context.Context, appID string) (*store.Portal, error) {
	var (
		p   *store.Portal
		err error = portal.ErrUnauthenticated
	)
	if key, ok := portalKey(ctx); ok {
		p, err = s.auth.AuthenticateAPIKey(ctx, key)
	} else if pr, ok := peer.FromContext(ctx); ok && pr.AuthInfo != nil {
		if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			sum := sha256.Sum256(ti.State.VerifiedChains[0][0].Raw)
			p, err = s.auth.AuthenticateCert(ctx, sum[:])
		}
	}
	switch {
	case errors.Is(err, portal.ErrDisabled):
		return nil, txStatusErr(codes.PermissionDenied, transaction.CodeForbidden, "the portal is disabled", "")
	case errors.Is(err, portal.ErrUnauthenticated):
		return nil, txStatusErr(codes.Unauthenticated, "unauthenticated", "a portal API key (x-api-key) or client certificate is required", "")
	case err != nil:
		s.log.ErrorContext(ctx, "portal authentication", "err", err)
		return nil, txStatusErr(codes.Unavailable, transaction.CodeUnavailable, "authentication is unavailable; retry", "")
	}
	if appID != "" && appID != p.ID {
		return nil, txStatusErr(codes.PermissionDenied, transaction.CodeForbidden, "app_id is not the authenticated portal", "app_id")
	}
	return p, nil
}

func portalKey(ctx context.Context) (string, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return "", false
	}
	if v := md.Get(PortalAPIKeyMetadata); len(v) > 0 && v[0] != "" {
		return v[0], true
	}
	if tok, ok := bearer(ctx); ok {
		return tok, true
	}
	return "", false
}

// txStatus turns a transaction error into a status whose ErrorInfo reason
// is the stable code; other errors are Internal, their text logged only.
func (s *TransactionService) txStatus(ctx context.Context, method string, err error) error {
	var e *transaction.Error
	if !errors.As(err, &e) {
		s.log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("method", method), slog.Any("err", err))
		return newStatus(codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", nil)
	}
	c := GRPCCode(e.Code.Kind())
	lvl := slog.LevelWarn
	if c == codes.Unavailable {
		lvl = slog.LevelError
	}
	s.log.LogAttrs(ctx, lvl, "request refused", slog.String("method", method), slog.String("code", string(e.Code)), slog.Any("err", err))
	return txStatusErr(c, e.Code, e.Message, e.Field)
}

func txStatusErr(c codes.Code, code transaction.Code, msg, field string) error {
	st := status.New(c, msg)
	info := &errdetails.ErrorInfo{Reason: string(code), Domain: ErrorDomain}
	var (
		withDetails *status.Status
		err         error
	)
	if field != "" {
		info.Metadata = map[string]string{"field": field}
		withDetails, err = st.WithDetails(info,
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}})
	} else {
		withDetails, err = st.WithDetails(info)
	}
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

var formatsIn = map[firmav1.SignatureFormat]signer.Format{
	firmav1.SignatureFormat_SIGNATURE_FORMAT_UNSPECIFIED:  "",
	firmav1.SignatureFormat_SIGNATURE_FORMAT_RAW:          signer.FormatRaw,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES:        signer.FormatCAdES,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_PADES:        signer.FormatPAdES,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_XADES:        signer.FormatXAdES,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_ASIC_S_CADES: signer.FormatASiCSCAdES,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_ASIC_S_XADES: signer.FormatASiCSXAdES,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_ASIC_E_XADES: signer.FormatASiCEXAdES,
	firmav1.SignatureFormat_SIGNATURE_FORMAT_FACTURAE:     signer.FormatFacturae,
}

var formatsOut = map[signer.Format]firmav1.SignatureFormat{
	signer.FormatRaw:        firmav1.SignatureFormat_SIGNATURE_FORMAT_RAW,
	signer.FormatCAdES:      firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES,
	signer.FormatPAdES:      firmav1.SignatureFormat_SIGNATURE_FORMAT_PADES,
	signer.FormatXAdES:      firmav1.SignatureFormat_SIGNATURE_FORMAT_XADES,
	signer.FormatASiCSCAdES: firmav1.SignatureFormat_SIGNATURE_FORMAT_ASIC_S_CADES,
	signer.FormatASiCSXAdES: firmav1.SignatureFormat_SIGNATURE_FORMAT_ASIC_S_XADES,
	signer.FormatASiCEXAdES: firmav1.SignatureFormat_SIGNATURE_FORMAT_ASIC_E_XADES,
	signer.FormatFacturae:   firmav1.SignatureFormat_SIGNATURE_FORMAT_FACTURAE,
}

func documentsIn(ds []*firmav1.TransactionDocument) ([]transaction.DocumentInput, error) {
	out := make([]transaction.DocumentInput, 0, len(ds))
	for _, d := range ds {
		f, ok := formatsIn[d.GetFormat()]
		if !ok {
			return nil, txStatusErr(codes.InvalidArgument, transaction.CodeUnsupportedFormat, "unknown signature format", "documents.format")
		}
		out = append(out, transaction.DocumentInput{Name: d.GetName(), MediaType: d.GetMediaType(), Content: d.GetContent(),
			Digest: d.GetDigest(), Hash: d.GetHash(), Format: f, Operation: signer.Operation(d.GetOperation()),
			Signature: d.GetSignature(), Policy: d.GetPolicy(), Attached: d.GetAttached()})
	}
	return out, nil
}

// Sign creates a one-document transaction.
func (s *TransactionService) Sign(ctx context.Context, req *firmav1.SignRequest) (*firmav1.CreateTransactionResponse, error) {
	const method = "Sign"
	p, err := s.portal(ctx, req.GetAppId())
	if err != nil {
		return nil, err
	}
	if req.GetDocument() == nil {
		return nil, txStatusErr(codes.InvalidArgument, transaction.CodeInvalidRequest, "document is required", "document")
	}
	docs, err := documentsIn([]*firmav1.TransactionDocument{req.GetDocument()})
	if err != nil {
		return nil, err
	}
	return s.create(ctx, method, p, transaction.CreateRequest{CitizenID: req.GetSubjectId(), Documents: docs, OKURL: req.GetOkUrl(),
		ErrorURL: req.GetErrorUrl(), Level: signer.Level(req.GetLevel()), IdempotencyKey: req.GetIdempotencyKey()})
}

// CreateBatch creates a transaction of 1..N documents.
func (s *TransactionService) CreateBatch(ctx context.Context, req *firmav1.CreateBatchRequest) (*firmav1.CreateTransactionResponse, error) {
	const method = "CreateBatch"
	p, err := s.portal(ctx, req.GetAppId())
	if err != nil {
		return nil, err
	}
	docs, err := documentsIn(req.GetDocuments())
	if err != nil {
		return nil, err
	}
	r := transaction.CreateRequest{CitizenID: req.GetSubjectId(), Documents: docs, OKURL: req.GetOkUrl(),
		ErrorURL: req.GetErrorUrl(), StopOnError: req.GetStopOnError(), Level: signer.Level(req.GetLevel()),
		IdempotencyKey: req.GetIdempotencyKey()}
	if len(docs) == 0 {
		c, err := s.svc.CreateDraft(ctx, p, r)
		if err != nil {
			return nil, s.txStatus(ctx, method, err)
		}
		return createdOut(c), nil
	}
	return s.create(ctx, method, p, r)
}

// AddDocumentToBatch adds a document to an open batch.
func (s *TransactionService) AddDocumentToBatch(ctx context.Context, req *firmav1.AddDocumentToBatchRequest) (*firmav1.AddDocumentToBatchResponse, error) {
	const method = "AddDocumentToBatch"
	p, err := s.portal(ctx, req.GetRef().GetAppId())
	if err != nil {
		return nil, err
	}
	if req.GetDocument() == nil {
		return nil, txStatusErr(codes.InvalidArgument, transaction.CodeInvalidRequest, "document is required", "document")
	}
	docs, err := documentsIn([]*firmav1.TransactionDocument{req.GetDocument()})
	if err != nil {
		return nil, err
	}
	i, err := s.svc.AddDocument(ctx, p, req.GetRef().GetTransactionId(), docs[0])
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	return &firmav1.AddDocumentToBatchResponse{DocumentIndex: int32(i)}, nil
}

// SignBatch closes an open batch and returns where to send the citizen.
func (s *TransactionService) SignBatch(ctx context.Context, ref *firmav1.TransactionRef) (*firmav1.CreateTransactionResponse, error) {
	const method = "SignBatch"
	p, _, err := s.lookup(ctx, method, ref)
	if err != nil {
		return nil, err
	}
	c, err := s.svc.SignBatch(ctx, p.ID, ref.GetTransactionId())
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	return createdOut(c), nil
}

func createdOut(c *transaction.Created) *firmav1.CreateTransactionResponse {
	return &firmav1.CreateTransactionResponse{TransactionId: c.ID, RedirectUrl: c.RedirectURL, State: string(c.State),
		ExpiresAt: tstamp(c.ExpiresAt), Replayed: c.Replayed}
}

func (s *TransactionService) create(ctx context.Context, method string, p *store.Portal, r transaction.CreateRequest) (*firmav1.CreateTransactionResponse, error) {
	c, err := s.svc.Create(ctx, p, r)
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	return createdOut(c), nil
}

// lookup authenticates the portal and fetches its transaction, applying
// subject_id: a wrong citizen is NOT_FOUND, like a wrong id.
func (s *TransactionService) lookup(ctx context.Context, method string, ref *firmav1.TransactionRef) (*store.Portal, *transaction.Transaction, error) {
	p, err := s.portal(ctx, ref.GetAppId())
	if err != nil {
		return nil, nil, err
	}
	t, err := s.svc.Get(ctx, p.ID, ref.GetTransactionId())
	if err != nil {
		return nil, nil, s.txStatus(ctx, method, err)
	}
	if sub := ref.GetSubjectId(); sub != "" {
		if n, err := registry.NormalizeID("subject_id", sub); err != nil || n != t.CitizenID {
			return nil, nil, s.txStatus(ctx, method, transaction.ErrNotFound)
		}
	}
	return p, t, nil
}

// RecoverBatchState returns the transaction's state.
func (s *TransactionService) RecoverBatchState(ctx context.Context, ref *firmav1.TransactionRef) (*firmav1.TransactionState, error) {
	_, t, err := s.lookup(ctx, "RecoverBatchState", ref)
	if err != nil {
		return nil, err
	}
	return stateOut(t), nil
}

// RecoverBatchResult returns every document's result and the chain.
func (s *TransactionService) RecoverBatchResult(ctx context.Context, ref *firmav1.TransactionRef) (*firmav1.TransactionResult, error) {
	const method = "RecoverBatchResult"
	p, _, err := s.lookup(ctx, method, ref)
	if err != nil {
		return nil, err
	}
	r, err := s.svc.Results(ctx, p.ID, ref.GetTransactionId())
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	out := &firmav1.TransactionResult{Transaction: stateOut(r.Transaction), CertificateChain: r.Chain}
	for _, d := range r.Documents {
		out.Documents = append(out.Documents, docResultOut(d))
	}
	return out, nil
}

// RecoverBatchSign returns one document's result.
func (s *TransactionService) RecoverBatchSign(ctx context.Context, req *firmav1.RecoverBatchSignRequest) (*firmav1.DocumentResult, error) {
	const method = "RecoverBatchSign"
	p, _, err := s.lookup(ctx, method, req.GetRef())
	if err != nil {
		return nil, err
	}
	d, err := s.svc.Document(ctx, p.ID, req.GetRef().GetTransactionId(), int(req.GetDocumentIndex()))
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	return docResultOut(*d), nil
}

// CancelTransaction cancels a transaction not yet approved.
func (s *TransactionService) CancelTransaction(ctx context.Context, ref *firmav1.TransactionRef) (*firmav1.TransactionState, error) {
	const method = "CancelTransaction"
	p, _, err := s.lookup(ctx, method, ref)
	if err != nil {
		return nil, err
	}
	t, err := s.svc.Cancel(ctx, p.ID, ref.GetTransactionId())
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	return stateOut(t), nil
}

// ListTransactions pages through the portal's transactions.
func (s *TransactionService) ListTransactions(ctx context.Context, req *firmav1.ListTransactionsRequest) (*firmav1.ListTransactionsResponse, error) {
	const method = "ListTransactions"
	p, err := s.portal(ctx, "")
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 1000 {
		size = 100
	}
	ts, err := s.svc.List(ctx, p.ID, strings.TrimSpace(req.GetState()), req.GetPageToken(), size)
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	out := &firmav1.ListTransactionsResponse{}
	for _, t := range ts {
		out.Transactions = append(out.Transactions, stateOut(t))
	}
	if len(ts) == size {
		out.NextPageToken = ts[len(ts)-1].ID
	}
	return out, nil
}

func stateOut(t *transaction.Transaction) *firmav1.TransactionState {
	out := &firmav1.TransactionState{TransactionId: t.ID, AppId: t.PortalID, SubjectId: t.CitizenID, State: string(t.State),
		StopOnError: t.StopOnError, Summary: string(t.Summary), ErrorCode: string(t.ErrorCode), ErrorMessage: t.ErrorMessage,
		CreatedAt: tstamp(t.CreatedAt), UpdatedAt: tstamp(t.UpdatedAt), ExpiresAt: tstamp(t.ExpiresAt), EndedAt: tstamp(t.EndedAt)}
	for _, d := range t.Documents {
		out.Documents = append(out.Documents, docStateOut(d))
	}
	return out
}

func docStateOut(d transaction.DocumentState) *firmav1.DocumentState {
	return &firmav1.DocumentState{Index: int32(d.Index), Name: d.Name, MediaType: d.MediaType, Size: d.Size, Hash: d.Hash,
		Digest: d.Digest, Format: formatsOut[d.Format], Status: string(d.Status), ErrorCode: string(d.ErrorCode), Error: d.Error}
}

func docResultOut(d transaction.DocumentResult) *firmav1.DocumentResult {
	return &firmav1.DocumentResult{Document: docStateOut(d.DocumentState), Signature: d.Signature, Timestamped: d.Timestamped,
		SignedAt: tstamp(d.SignedAt), TimestampToken: d.TimestampToken, TimestampTime: tstamp(d.TimestampTime)}
}

// tstamp is nil for the zero time, so unset times stay unset on the wire.
func tstamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// UpgradeSignature raises a signature made here or elsewhere to a higher
// level; the portal keeps the result.
func (s *TransactionService) UpgradeSignature(ctx context.Context, req *firmav1.UpgradeSignatureRequest) (*firmav1.UpgradeSignatureResponse, error) {
	const method = "UpgradeSignature"
	if _, err := s.portal(ctx, ""); err != nil {
		return nil, err
	}
	level, err := signer.ParseLevel(req.GetLevel())
	if err != nil {
		return nil, txStatusErr(codes.InvalidArgument, transaction.CodeInvalidRequest, err.Error(), "level")
	}
	f, ok := formatsIn[req.GetFormat()]
	if !ok {
		return nil, txStatusErr(codes.InvalidArgument, transaction.CodeUnsupportedFormat, "unknown signature format", "format")
	}
	out, err := s.svc.Upgrade(ctx, transaction.UpgradeRequest{Signature: req.GetSignature(), Digest: req.GetDigest(), Hash: req.GetHash(),
		Level: level, Format: f})
	if err != nil {
		return nil, s.txStatus(ctx, method, err)
	}
	return &firmav1.UpgradeSignatureResponse{Signature: out, Level: string(level)}, nil
}
