package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/store"
)

// AuditService authenticates its callers itself: auditors hold credentials
// of their own, not operator ones, so the operator interceptor lets its
// methods through, and an auditor's credential opens nothing else.
func init() {
	for _, m := range firmav1.AuditService_ServiceDesc.Methods {
		publicMethods["/"+firmav1.AuditService_ServiceDesc.ServiceName+"/"+m.MethodName] = true
	}
	for _, m := range firmav1.AuditService_ServiceDesc.Streams {
		publicMethods["/"+firmav1.AuditService_ServiceDesc.ServiceName+"/"+m.StreamName] = true
	}
}

// NewAuditors authenticates auditors (security officers) by their own
// bearer tokens or client certificates, as Auth does operators.
func NewAuditors(creds []audit.Credential) (*Auth, error) {
	ops := make([]config.Operator, len(creds))
	for i, c := range creds {
		ops[i] = config.Operator{Name: c.Name, TokenSHA256: c.TokenSHA256, CertSHA256: c.CertSHA256}
	}
	a, err := NewAuth(ops)
	if err != nil {
		return nil, fmt.Errorf("audit auditors: %w", err)
	}
	return a, nil
}

func permissionDenied(msg string) error {
	return newStatus(codes.PermissionDenied, firmav1.ErrorReason_ERROR_REASON_PERMISSION_DENIED, msg, nil)
}

// AuditService implements firmav1.AuditServiceServer for auditors.
type AuditService struct {
	firmav1.UnimplementedAuditServiceServer
	log       *audit.Log
	vkey      string
	auditors  *Auth
	operators *Auth
	slog      *slog.Logger
}

var _ firmav1.AuditServiceServer = (*AuditService)(nil)

// NewAuditService serves l to the auditors (NewAuditors). verifierKey is
// the checkpoint verifier key GetCheckpoint hands out; operators, if not
// nil, tells a refused operator from an anonymous caller in the log.
func NewAuditService(l *audit.Log, verifierKey string, auditors, operators *Auth, log *slog.Logger) *AuditService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if auditors == nil {
		auditors = &Auth{}
	}
	if operators == nil {
		operators = &Auth{}
	}
	return &AuditService{log: l, vkey: verifierKey, auditors: auditors, operators: operators, slog: log}
}

// authorize admits auditors only, and writes the access itself to the log
// before any data leaves: reading personal data is accountable, and if
// that record cannot be written the read is refused.
func (s *AuditService) authorize(ctx context.Context, method string, ev audit.Event, details map[string]string) error {
	name, ok := s.auditors.Authenticate(ctx)
	if !ok {
		actor, refusal := audit.Actor{Role: audit.RoleAnonymous, ID: "-"}, unauthenticatedAuditor()
		if op, isOp := s.operators.Authenticate(ctx); isOp {
			actor, refusal = audit.Actor{Role: audit.RoleAdmin, ID: op}, permissionDenied("only auditors may read the audit log")
		}
		rec := &audit.Record{Event: audit.AuthFailed, Outcome: audit.Denied, Actor: actor,
			Reason: "audit log access without an auditor credential", Details: map[string]string{"method": method}}
		if err := s.log.Append(ctx, rec); err != nil {
			s.slog.Error("cannot audit a refused audit access", "err", err)
		}
		return refusal
	}
	if details == nil {
		details = map[string]string{}
	}
	details["method"] = method
	rec := &audit.Record{Event: ev, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleAuditor, ID: name}, Details: details}
	if err := s.log.Append(ctx, rec); err != nil {
		return toStatus(ctx, s.slog, method, err)
	}
	return nil
}

func unauthenticatedAuditor() error {
	return newStatus(codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED,
		"an auditor bearer token or client certificate is required", nil)
}

func optTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// QueryAudit pages through records.
func (s *AuditService) QueryAudit(ctx context.Context, req *firmav1.QueryAuditRequest) (*firmav1.QueryAuditResponse, error) {
	const method = "QueryAudit"
	f := audit.Filter{Citizen: req.GetCitizen(), KeyID: req.GetKeyId(), Portal: req.GetPortal(),
		From: optTime(req.GetFrom()), To: optTime(req.GetTo()), Limit: int(req.GetPageSize())}
	if f.Limit < 0 || f.Limit > audit.MaxPage {
		return nil, invalidArg("page_size", fmt.Sprintf("must be 0 to %d", audit.MaxPage))
	}
	for _, e := range req.GetEvents() {
		ev, err := audit.ParseEvent(e)
		if err != nil {
			return nil, invalidArg("events", "unknown event type")
		}
		f.Events = append(f.Events, ev)
	}
	if t := req.GetPageToken(); t != "" {
		c, err := strconv.ParseInt(t, 10, 64)
		if err != nil || c <= 0 {
			return nil, invalidArg("page_token", "not a token from a previous page")
		}
		f.Cursor = c
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, invalidArg("to", "must be after from")
	}
	details := map[string]string{}
	for k, v := range map[string]string{"citizen": f.Citizen, "key_id": f.KeyID, "portal": f.Portal} {
		if v != "" {
			details["filter_"+k] = v
		}
	}
	if err := s.authorize(ctx, method, audit.AuditRead, details); err != nil {
		return nil, err
	}
	page, err := s.log.Query(ctx, f)
	if err != nil {
		return nil, toStatus(ctx, s.slog, method, err)
	}
	resp := &firmav1.QueryAuditResponse{}
	for _, r := range page.Records {
		pr, err := RecordProto(r)
		if err != nil {
			return nil, toStatus(ctx, s.slog, method, err)
		}
		resp.Records = append(resp.Records, pr)
	}
	if page.Next != 0 {
		resp.NextPageToken = strconv.FormatInt(page.Next, 10)
	}
	return resp, nil
}

// RecordProto converts a record to its wire form.
func RecordProto(r *audit.Record) (*firmav1.AuditRecord, error) {
	leaf, err := r.Leaf()
	if err != nil {
		return nil, err
	}
	p := &firmav1.AuditRecord{
		Seq: r.Seq, Time: timestamppb.New(r.Time), Node: r.Node, Event: string(r.Event), Outcome: string(r.Outcome),
		Actor: &firmav1.AuditActor{Role: r.Actor.Role, Id: r.Actor.ID}, Citizen: r.Citizen, Portal: r.Portal,
		KeyId: r.KeyID, RequestId: r.RequestID, Reason: r.Reason, Details: r.Details, Leaf: leaf,
	}
	for _, d := range r.Documents {
		p.Documents = append(p.Documents, &firmav1.AuditDocument{Hash: d.Hash, Digest: d.Digest, Name: d.Name})
	}
	return p, nil
}

// exportChunk is the size of ExportAudit's messages, well under gRPC's
// default 4 MiB limit.
const exportChunk = 256 << 10

type chunkWriter struct {
	send func(*firmav1.ExportAuditChunk) error
	buf  bytes.Buffer
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for w.buf.Len() >= exportChunk {
		if err := w.flush(exportChunk); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *chunkWriter) flush(n int) error {
	if n == 0 {
		return nil
	}
	data := make([]byte, n)
	copy(data, w.buf.Next(n))
	return w.send(&firmav1.ExportAuditChunk{Data: data})
}

// ExportAudit streams the log as JSON lines.
func (s *AuditService) ExportAudit(_ *firmav1.ExportAuditRequest, stream grpc.ServerStreamingServer[firmav1.ExportAuditChunk]) error {
	const method = "ExportAudit"
	ctx := stream.Context()
	if err := s.authorize(ctx, method, audit.AuditExported, nil); err != nil {
		return err
	}
	w := &chunkWriter{send: stream.Send}
	if err := s.log.Export(ctx, w); err != nil {
		return toStatus(ctx, s.slog, method, err)
	}
	if err := w.flush(w.buf.Len()); err != nil {
		return toStatus(ctx, s.slog, method, err)
	}
	return nil
}

// KeyUsageReport summarises key use.
func (s *AuditService) KeyUsageReport(ctx context.Context, req *firmav1.KeyUsageReportRequest) (*firmav1.KeyUsageReportResponse, error) {
	const method = "KeyUsageReport"
	from, to := optTime(req.GetFrom()), optTime(req.GetTo())
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return nil, invalidArg("to", "must be after from")
	}
	details := map[string]string{}
	if req.GetCitizen() != "" {
		details["filter_citizen"] = req.GetCitizen()
	}
	if req.GetPortal() != "" {
		details["filter_portal"] = req.GetPortal()
	}
	if err := s.authorize(ctx, method, audit.AuditRead, details); err != nil {
		return nil, err
	}
	us, err := s.log.KeyUsage(ctx, req.GetCitizen(), req.GetPortal(), from, to)
	if err != nil {
		return nil, toStatus(ctx, s.slog, method, err)
	}
	resp := &firmav1.KeyUsageReportResponse{}
	for _, u := range us {
		resp.Usage = append(resp.Usage, &firmav1.KeyUsage{Citizen: u.Citizen, Portal: u.Portal, KeyId: u.KeyID,
			Signatures: u.Signatures, Failures: u.Failures, Documents: u.Documents,
			First: timestamppb.New(u.First), Last: timestamppb.New(u.Last)})
	}
	return resp, nil
}

// GetCheckpoint returns the latest checkpoint, signing one if the log grew.
func (s *AuditService) GetCheckpoint(ctx context.Context, _ *firmav1.GetCheckpointRequest) (*firmav1.GetCheckpointResponse, error) {
	const method = "GetCheckpoint"
	if err := s.authorize(ctx, method, audit.AuditRead, nil); err != nil {
		return nil, err
	}
	c, err := s.log.Checkpoint(ctx)
	if errors.Is(err, audit.ErrNoSigner) {
		c, err = s.log.Latest(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, newStatus(codes.NotFound, firmav1.ErrorReason_ERROR_REASON_CHECKPOINT_NOT_FOUND, "no audit checkpoint yet", nil)
		}
	}
	if err != nil {
		return nil, toStatus(ctx, s.slog, method, err)
	}
	return &firmav1.GetCheckpointResponse{Note: string(c.Note), Size: c.Size, RootHash: c.Root[:], Timestamp: c.Timestamp, VerifierKey: s.vkey}, nil
}

// ProveInclusion proves a record is in a tree.
func (s *AuditService) ProveInclusion(ctx context.Context, req *firmav1.ProveInclusionRequest) (*firmav1.ProveInclusionResponse, error) {
	const method = "ProveInclusion"
	if req.GetIndex() < 0 || req.GetIndex() >= req.GetTreeSize() {
		return nil, invalidArg("index", "must be at least 0 and below tree_size")
	}
	if err := s.authorize(ctx, method, audit.AuditRead, map[string]string{"index": strconv.FormatInt(req.GetIndex(), 10)}); err != nil {
		return nil, err
	}
	p, err := s.log.InclusionProof(ctx, req.GetIndex(), req.GetTreeSize())
	if err != nil {
		return nil, toStatus(ctx, s.slog, method, err)
	}
	page, err := s.log.Query(ctx, audit.Filter{Cursor: req.GetIndex(), Limit: 1})
	if err != nil || len(page.Records) == 0 || page.Records[0].Seq != req.GetIndex() {
		return nil, toStatus(ctx, s.slog, method, fmt.Errorf("record %d: %w", req.GetIndex(), errors.Join(err, audit.ErrRange)))
	}
	leaf, err := page.Records[0].Leaf()
	if err != nil {
		return nil, toStatus(ctx, s.slog, method, err)
	}
	resp := &firmav1.ProveInclusionResponse{Leaf: leaf}
	for _, h := range p {
		resp.Proof = append(resp.Proof, bytes.Clone(h[:]))
	}
	return resp, nil
}

// ProveConsistency proves one tree extends another.
func (s *AuditService) ProveConsistency(ctx context.Context, req *firmav1.ProveConsistencyRequest) (*firmav1.ProveConsistencyResponse, error) {
	const method = "ProveConsistency"
	if req.GetOldSize() < 1 || req.GetOldSize() > req.GetNewSize() {
		return nil, invalidArg("old_size", "must be at least 1 and at most new_size")
	}
	if err := s.authorize(ctx, method, audit.AuditRead, nil); err != nil {
		return nil, err
	}
	p, err := s.log.ConsistencyProof(ctx, req.GetOldSize(), req.GetNewSize())
	if err != nil {
		return nil, toStatus(ctx, s.slog, method, err)
	}
	resp := &firmav1.ProveConsistencyResponse{}
	for _, h := range p {
		resp.Proof = append(resp.Proof, bytes.Clone(h[:]))
	}
	return resp, nil
}
