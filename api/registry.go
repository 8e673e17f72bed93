package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// RegistryService authenticates its callers itself: staff bearer tokens
// are not operators, and citizens have no credentials at all. So the
// operator interceptor lets its methods through and each staff method
// checks the caller here.
func init() {
	for _, m := range firmav1.RegistryService_ServiceDesc.Methods {
		publicMethods["/"+firmav1.RegistryService_ServiceDesc.ServiceName+"/"+m.MethodName] = true
	}
	for _, m := range firmav1.RegistryService_ServiceDesc.Streams {
		publicMethods["/"+firmav1.RegistryService_ServiceDesc.ServiceName+"/"+m.StreamName] = true
	}
}

// MaxImportBytes bounds one bulk import (about a million rows).
const MaxImportBytes = 256 << 20

// RegistryService implements firmav1.RegistryServiceServer on a registry.
type RegistryService struct {
	firmav1.UnimplementedRegistryServiceServer
	reg    *registry.Service
	outbox SMSReader
	staff  *StaffAuth
	log    *slog.Logger
}

var _ firmav1.RegistryServiceServer = (*RegistryService)(nil)

// SMSReader is the part of an outbox gateway ListSMS reads; nil when the
// configured gateway really sends.
type SMSReader interface {
	Messages(ctx context.Context, to string, limit int) ([]*store.SMS, error)
}

// NewRegistryService returns the registry service. outbox may be nil.
func NewRegistryService(reg *registry.Service, staff *StaffAuth, outbox SMSReader, log *slog.Logger) *RegistryService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RegistryService{reg: reg, staff: staff, outbox: outbox, log: log}
}

// RegisterRegistry registers the registry service on s.
func RegisterRegistry(s *grpc.Server, svc *RegistryService) {
	firmav1.RegisterRegistryServiceServer(s, svc)
}

// StaffAuth authenticates registry staff: configured staff tokens with a
// role, and operators, who act as administrators.
type StaffAuth struct {
	operators *Auth
	// staff is swapped whole by Replace (firmad reloads it on SIGHUP).
	staff atomic.Pointer[[]staffToken]
}

type staffToken struct {
	name  string
	role  policy.Role
	token []byte // SHA-256
}

// NewStaffAuth builds staff authentication from the operators' Auth (may
// be nil) and the configured staff tokens.
func NewStaffAuth(operators *Auth, staff []registry.StaffToken) (*StaffAuth, error) {
	a := &StaffAuth{operators: operators}
	var list []staffToken
	for i, s := range staff {
		role, err := policy.ParseRole(s.Role)
		if err != nil {
			return nil, fmt.Errorf("registry.staff[%d].role: %w", i, err)
		}
		sum, err := decodeSHA256(s.TokenSHA256)
		if err != nil {
			return nil, fmt.Errorf("registry.staff[%d].token_sha256: %w", i, err)
		}
		list = append(list, staffToken{name: s.Name, role: role, token: sum})
	}
	a.staff.Store(&list)
	return a, nil
}

// Replace makes a admit b's staff from now on (the operators stay a's).
func (a *StaffAuth) Replace(b *StaffAuth) {
	a.staff.Store(b.staff.Load())
}

// Staff returns the staff member behind a call: an operator (as
// administrator) or a staff token. Every token digest is compared in
// constant time.
func (a *StaffAuth) Staff(ctx context.Context) (registry.Staff, bool) {
	if a == nil {
		return registry.Staff{}, false
	}
	if a.operators != nil {
		if name, ok := a.operators.Authenticate(ctx); ok {
			return registry.Staff{Name: "operator:" + name, Role: policy.Administrator}, true
		}
	}
	tok, ok := bearer(ctx)
	if !ok {
		return registry.Staff{}, false
	}
	sum := sha256.Sum256([]byte(tok))
	var staff []staffToken
	if p := a.staff.Load(); p != nil {
		staff = *p
	}
	found := -1
	for i := range staff {
		if subtle.ConstantTimeCompare(sum[:], staff[i].token) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return registry.Staff{}, false
	}
	return registry.Staff{Name: staff[found].name, Role: staff[found].role}, true
}

func (s *RegistryService) needStaff(ctx context.Context) (registry.Staff, error) {
	st, ok := s.staff.Staff(ctx)
	if !ok {
		return st, registryStatusf(codes.Unauthenticated, firmav1.RegistryErrorReason_REGISTRY_ERROR_REASON_STAFF_REQUIRED,
			"a staff or operator bearer token is required", nil)
	}
	return st, nil
}

func (s *RegistryService) needOperator(ctx context.Context) error {
	st, err := s.needStaff(ctx)
	if err != nil {
		return err
	}
	if st.Role != policy.Administrator {
		return registryStatusf(codes.PermissionDenied, firmav1.RegistryErrorReason_REGISTRY_ERROR_REASON_STAFF_REQUIRED,
			"only operators may do this", nil)
	}
	return nil
}

// RegisterInPerson implements firmav1.RegistryServiceServer.
func (s *RegistryService) RegisterInPerson(ctx context.Context, req *firmav1.RegisterPersonRequest) (*firmav1.RegistrationResponse, error) {
	st, err := s.needStaff(ctx)
	if err != nil {
		return nil, err
	}
	conf, err := s.reg.RegisterInPerson(ctx, st, personOf(req))
	if err != nil {
		return nil, s.status(ctx, "RegisterInPerson", err)
	}
	return s.confirmation(ctx, conf)
}

// RegisterVideoCall implements firmav1.RegistryServiceServer.
func (s *RegistryService) RegisterVideoCall(ctx context.Context, req *firmav1.RegisterPersonRequest) (*firmav1.RegistrationResponse, error) {
	st, err := s.needStaff(ctx)
	if err != nil {
		return nil, err
	}
	conf, err := s.reg.RegisterVideoCall(ctx, st, personOf(req))
	if err != nil {
		return nil, s.status(ctx, "RegisterVideoCall", err)
	}
	return s.confirmation(ctx, conf)
}

// GetServiceHours implements firmav1.RegistryServiceServer.
func (s *RegistryService) GetServiceHours(ctx context.Context, _ *firmav1.GetServiceHoursRequest) (*firmav1.GetServiceHoursResponse, error) {
	open, next := s.reg.VideoCallOpen()
	return &firmav1.GetServiceHoursResponse{Hours: s.reg.Hours().String(), OpenNow: open, NextOpening: timestamppb.New(next)}, nil
}

// GetCitizen implements firmav1.RegistryServiceServer.
func (s *RegistryService) GetCitizen(ctx context.Context, req *firmav1.GetCitizenRequest) (*firmav1.Citizen, error) {
	if _, err := s.needStaff(ctx); err != nil {
		return nil, err
	}
	c, err := s.reg.Citizen(ctx, req.GetId())
	if err != nil {
		return nil, s.status(ctx, "GetCitizen", err)
	}
	return CitizenProto(c), nil
}

// ListCitizens implements firmav1.RegistryServiceServer.
func (s *RegistryService) ListCitizens(ctx context.Context, req *firmav1.ListCitizensRequest) (*firmav1.ListCitizensResponse, error) {
	if _, err := s.needStaff(ctx); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalidArg("page_size", "must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	q := store.CitizenQuery{After: req.GetPageToken(), Limit: size}
	if req.GetLevel() != firmav1.RegistrationLevel_REGISTRATION_LEVEL_UNSPECIFIED {
		q.Level = citizenLevelName(req.GetLevel())
		if q.Level == "" {
			return nil, invalidArg("level", "unknown level")
		}
	}
	if req.GetStatus() != firmav1.CitizenStatus_CITIZEN_STATUS_UNSPECIFIED {
		q.Status = citizenStatusName(req.GetStatus())
		if q.Status == "" {
			return nil, invalidArg("status", "unknown status")
		}
	}
	cs, err := s.reg.Citizens(ctx, q)
	if err != nil {
		return nil, s.status(ctx, "ListCitizens", err)
	}
	resp := &firmav1.ListCitizensResponse{}
	for _, c := range cs {
		resp.Citizens = append(resp.Citizens, CitizenProto(c))
	}
	if len(cs) == size {
		resp.NextPageToken = cs[len(cs)-1].ID
	}
	return resp, nil
}

// DowngradeCitizen implements firmav1.RegistryServiceServer.
func (s *RegistryService) DowngradeCitizen(ctx context.Context, req *firmav1.ChangeCitizenRequest) (*firmav1.Citizen, error) {
	st, err := s.needStaff(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.reg.Downgrade(ctx, st, req.GetId(), strings.TrimSpace(req.GetReason()))
	if err != nil {
		return nil, s.status(ctx, "DowngradeCitizen", err)
	}
	return CitizenProto(c), nil
}

// RemoveCitizen implements firmav1.RegistryServiceServer.
func (s *RegistryService) RemoveCitizen(ctx context.Context, req *firmav1.ChangeCitizenRequest) (*firmav1.Citizen, error) {
	st, err := s.needStaff(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.reg.Remove(ctx, st, req.GetId(), strings.TrimSpace(req.GetReason()))
	if err != nil {
		return nil, s.status(ctx, "RemoveCitizen", err)
	}
	return CitizenProto(c), nil
}

// ReissueActivation implements firmav1.RegistryServiceServer.
func (s *RegistryService) ReissueActivation(ctx context.Context, req *firmav1.GetCitizenRequest) (*firmav1.RegistrationResponse, error) {
	st, err := s.needStaff(ctx)
	if err != nil {
		return nil, err
	}
	conf, err := s.reg.ReissueActivation(ctx, st, req.GetId())
	if err != nil {
		return nil, s.status(ctx, "ReissueActivation", err)
	}
	return s.confirmation(ctx, conf)
}

// PutFiscalRecord implements firmav1.RegistryServiceServer.
func (s *RegistryService) PutFiscalRecord(ctx context.Context, req *firmav1.PutFiscalRecordRequest) (*firmav1.PutFiscalRecordResponse, error) {
	st, err := s.needStaff(ctx)
	if err != nil {
		return nil, err
	}
	if err := policy.MayManage(st.Role); err != nil {
		return nil, s.status(ctx, "PutFiscalRecord", err)
	}
	if err := s.reg.PutFiscalRecord(ctx, req.GetId(), req.GetGivenName(), req.GetSurnames(), req.GetFiscalAddress()); err != nil {
		return nil, s.status(ctx, "PutFiscalRecord", err)
	}
	return &firmav1.PutFiscalRecordResponse{}, nil
}

// ImportCitizens implements firmav1.RegistryServiceServer.
func (s *RegistryService) ImportCitizens(stream grpc.ClientStreamingServer[firmav1.ImportCitizensRequest, firmav1.ImportCitizensResponse]) error {
	ctx := stream.Context()
	if err := s.needOperator(ctx); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		total := 0
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			total += len(msg.GetCsvChunk())
			if total > MaxImportBytes {
				pw.CloseWithError(fmt.Errorf("import larger than %d bytes", MaxImportBytes))
				return
			}
			if _, err := pw.Write(msg.GetCsvChunk()); err != nil {
				return // the reader gave up; its error is returned below
			}
		}
	}()
	rep, err := s.reg.Import(ctx, pr, registry.ImportOptions{})
	pr.CloseWithError(io.ErrClosedPipe) // unblock the receiver if Import stopped early
	if err != nil {
		if errors.Is(err, registry.ErrHeader) {
			return invalidArg("csv_chunk", err.Error())
		}
		return s.status(ctx, "ImportCitizens", err)
	}
	resp := &firmav1.ImportCitizensResponse{Rows: int32(rep.Rows), Created: int32(rep.Created)}
	for _, e := range rep.Existing {
		resp.Existing = append(resp.Existing, &firmav1.ImportRowError{Line: int32(e.Line), Error: e.Err.Error()})
	}
	for _, e := range rep.Bad {
		resp.Bad = append(resp.Bad, &firmav1.ImportRowError{Line: int32(e.Line), Error: e.Err.Error()})
	}
	return stream.SendAndClose(resp)
}

// ListSMS implements firmav1.RegistryServiceServer.
func (s *RegistryService) ListSMS(ctx context.Context, req *firmav1.ListSMSRequest) (*firmav1.ListSMSResponse, error) {
	if err := s.needOperator(ctx); err != nil {
		return nil, err
	}
	if s.outbox == nil {
		return nil, status.Error(codes.FailedPrecondition, "the SMS gateway is not the outbox: messages are really sent")
	}
	msgs, err := s.outbox.Messages(ctx, req.GetTo(), int(req.GetLimit()))
	if err != nil {
		return nil, s.status(ctx, "ListSMS", err)
	}
	resp := &firmav1.ListSMSResponse{}
	for _, m := range msgs {
		resp.Messages = append(resp.Messages, &firmav1.SMS{Id: m.ID, To: m.To, Text: m.Text, CreatedAt: timestamppb.New(m.CreatedAt)})
	}
	return resp, nil
}

// ListLetters implements firmav1.RegistryServiceServer.
func (s *RegistryService) ListLetters(ctx context.Context, req *firmav1.ListLettersRequest) (*firmav1.ListLettersResponse, error) {
	if err := s.needOperator(ctx); err != nil {
		return nil, err
	}
	ls, err := s.reg.Letters(ctx, req.GetId(), int(req.GetLimit()))
	if err != nil {
		return nil, s.status(ctx, "ListLetters", err)
	}
	resp := &firmav1.ListLettersResponse{}
	for _, l := range ls {
		resp.Letters = append(resp.Letters, &firmav1.Letter{Id: l.ID, CitizenId: l.CitizenID, Address: l.Address, Body: l.Body,
			CreatedAt: timestamppb.New(l.CreatedAt)})
	}
	return resp, nil
}

// RequestLetter implements firmav1.RegistryServiceServer.
func (s *RegistryService) RequestLetter(ctx context.Context, req *firmav1.RequestLetterRequest) (*firmav1.RequestLetterResponse, error) {
	lr, err := s.reg.RequestLetter(ctx, req.GetId())
	if err != nil {
		return nil, s.status(ctx, "RequestLetter", err)
	}
	return &firmav1.RequestLetterResponse{LetterId: lr.ID, ExpiresAt: timestamppb.New(lr.ExpiresAt)}, nil
}

// RedeemLetter implements firmav1.RegistryServiceServer.
func (s *RegistryService) RedeemLetter(ctx context.Context, req *firmav1.RedeemLetterRequest) (*firmav1.RegistrationResponse, error) {
	conf, err := s.reg.RedeemLetter(ctx, registry.Redemption{ID: req.GetId(), CSV: req.GetCsv(), Mobile: req.GetMobile(),
		Email: req.GetEmail(), AcceptConditions: req.GetAcceptConditions()})
	if err != nil {
		return nil, s.status(ctx, "RedeemLetter", err)
	}
	return s.confirmation(ctx, conf)
}

// NewChallenge implements firmav1.RegistryServiceServer.
func (s *RegistryService) NewChallenge(ctx context.Context, _ *firmav1.NewChallengeRequest) (*firmav1.NewChallengeResponse, error) {
	ch, err := s.reg.NewChallenge(ctx)
	if err != nil {
		return nil, s.status(ctx, "NewChallenge", err)
	}
	return &firmav1.NewChallengeResponse{ChallengeId: ch.ID, Nonce: ch.Nonce, ExpiresAt: timestamppb.New(ch.ExpiresAt)}, nil
}

// StartCertificateRegistration implements firmav1.RegistryServiceServer.
func (s *RegistryService) StartCertificateRegistration(ctx context.Context, req *firmav1.StartCertificateRegistrationRequest) (*firmav1.StartCertificateRegistrationResponse, error) {
	proof := registry.CertificateProof{ChallengeID: req.GetChallengeId(), Nonce: req.GetNonce(), Signature: req.GetSignature()}
	if len(req.GetCertificates()) > 0 {
		if len(req.GetCertificates()) > 8 {
			return nil, invalidArg("certificates", "at most 8 certificates")
		}
		for i, der := range req.GetCertificates() {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, invalidArg("certificates", fmt.Sprintf("certificate %d is not DER X.509: %v", i, err))
			}
			proof.Chain = append(proof.Chain, c)
		}
	} else if chain := tlsPeerChain(ctx); len(chain) > 0 {
		// The TLS handshake proved possession of the key.
		proof.Chain, proof.FromTLS = chain, true
	}
	p, err := s.reg.StartCertificate(ctx, proof, req.GetMobile())
	if err != nil {
		return nil, s.status(ctx, "StartCertificateRegistration", err)
	}
	return &firmav1.StartCertificateRegistrationResponse{PendingId: p.ID, Id: p.CitizenID, GivenName: p.GivenName,
		Surnames: p.Surnames, Mobile: p.Mobile, ExpiresAt: timestamppb.New(p.ExpiresAt)}, nil
}

// tlsPeerChain returns the client certificates of the call's TLS
// connection, verified or not: the registry checks them against its own
// trusted CAs.
func tlsPeerChain(ctx context.Context) []*x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return ti.State.PeerCertificates
}

// ConfirmCertificateRegistration implements firmav1.RegistryServiceServer.
func (s *RegistryService) ConfirmCertificateRegistration(ctx context.Context, req *firmav1.ConfirmCertificateRegistrationRequest) (*firmav1.RegistrationResponse, error) {
	conf, err := s.reg.ConfirmCertificate(ctx, registry.CertificateConfirmation{PendingID: req.GetPendingId(), Code: req.GetCode(),
		Email: req.GetEmail(), AcceptConditions: req.GetAcceptConditions()})
	if err != nil {
		return nil, s.status(ctx, "ConfirmCertificateRegistration", err)
	}
	return s.confirmation(ctx, conf)
}

// SetPassword implements firmav1.RegistryServiceServer.
func (s *RegistryService) SetPassword(ctx context.Context, req *firmav1.SetPasswordRequest) (*firmav1.SetPasswordResponse, error) {
	if err := s.reg.SetPassword(ctx, req.GetId(), req.GetActivationCode(), req.GetPassword()); err != nil {
		return nil, s.status(ctx, "SetPassword", err)
	}
	return &firmav1.SetPasswordResponse{}, nil
}

func (s *RegistryService) confirmation(ctx context.Context, conf *registry.Confirmation) (*firmav1.RegistrationResponse, error) {
	pdf, err := conf.PDF()
	if err != nil {
		// The citizen is registered: the code is still shown, only the
		// PDF is missing.
		s.log.ErrorContext(ctx, "confirmation pdf failed", "citizen", conf.Citizen.ID, "err", err)
	}
	return &firmav1.RegistrationResponse{Citizen: CitizenProto(conf.Citizen), Upgraded: conf.Upgraded,
		ActivationCode: conf.ActivationCode, ActivationExpiresAt: timestamppb.New(conf.ActivationExpires),
		PasswordUrl: conf.ServiceURL, ConfirmationPdf: pdf}, nil
}

func personOf(r *firmav1.RegisterPersonRequest) registry.Person {
	return registry.Person{ID: r.GetId(), GivenName: r.GetGivenName(), Surnames: r.GetSurnames(), Mobile: r.GetMobile(), Email: r.GetEmail()}
}

// CitizenProto returns the wire form of a citizen.
func CitizenProto(c *store.Citizen) *firmav1.Citizen {
	return &firmav1.Citizen{Id: c.ID, GivenName: c.GivenName, Surnames: c.Surnames, Mobile: c.Mobile, Email: c.Email,
		Level: citizenLevelProto(c.Level), Method: citizenMethodProto(c.Method), Status: citizenStatusProto(c.Status),
		CreatedAt: timestamppb.New(c.CreatedAt), UpdatedAt: timestamppb.New(c.UpdatedAt), LevelAt: timestamppb.New(c.LevelAt)}
}

func citizenLevelProto(s string) firmav1.RegistrationLevel {
	switch policy.Level(s) {
	case policy.Basic:
		return firmav1.RegistrationLevel_REGISTRATION_LEVEL_BASIC
	case policy.Advanced:
		return firmav1.RegistrationLevel_REGISTRATION_LEVEL_ADVANCED
	}
	return firmav1.RegistrationLevel_REGISTRATION_LEVEL_UNSPECIFIED
}

func citizenLevelName(l firmav1.RegistrationLevel) string {
	switch l {
	case firmav1.RegistrationLevel_REGISTRATION_LEVEL_BASIC:
		return string(policy.Basic)
	case firmav1.RegistrationLevel_REGISTRATION_LEVEL_ADVANCED:
		return string(policy.Advanced)
	}
	return ""
}

func citizenMethodProto(s string) firmav1.RegistrationMethod {
	switch policy.Method(s) {
	case policy.InPerson:
		return firmav1.RegistrationMethod_REGISTRATION_METHOD_IN_PERSON
	case policy.ElectronicCertificate:
		return firmav1.RegistrationMethod_REGISTRATION_METHOD_ELECTRONIC_CERTIFICATE
	case policy.VideoCall:
		return firmav1.RegistrationMethod_REGISTRATION_METHOD_VIDEO_CALL
	case policy.InvitationLetter:
		return firmav1.RegistrationMethod_REGISTRATION_METHOD_INVITATION_LETTER
	}
	return firmav1.RegistrationMethod_REGISTRATION_METHOD_UNSPECIFIED
}

func citizenStatusProto(s string) firmav1.CitizenStatus {
	switch s {
	case registry.StatusActive:
		return firmav1.CitizenStatus_CITIZEN_STATUS_ACTIVE
	case registry.StatusLocked:
		return firmav1.CitizenStatus_CITIZEN_STATUS_LOCKED
	case registry.StatusRemoved:
		return firmav1.CitizenStatus_CITIZEN_STATUS_REMOVED
	}
	return firmav1.CitizenStatus_CITIZEN_STATUS_UNSPECIFIED
}

func citizenStatusName(s firmav1.CitizenStatus) string {
	switch s {
	case firmav1.CitizenStatus_CITIZEN_STATUS_ACTIVE:
		return registry.StatusActive
	case firmav1.CitizenStatus_CITIZEN_STATUS_LOCKED:
		return registry.StatusLocked
	case firmav1.CitizenStatus_CITIZEN_STATUS_REMOVED:
		return registry.StatusRemoved
	}
	return ""
}

// status maps a registry error to a gRPC status with ErrorInfo and, for
// bad fields, a BadRequest violation. 4xx-like errors log at Warn, the
// rest at Error with the cause hidden from the client.
func (s *RegistryService) status(ctx context.Context, method string, err error) error {
	var (
		fe *registry.FieldError
		pr *policy.Refusal
		ce *registry.ClosedError
	)
	switch {
	case errors.As(err, &fe):
		s.log.WarnContext(ctx, "registry request refused", "method", method, "field", fe.Field, "reason", fe.Reason)
		return invalidArg(fe.Field, fe.Reason)
	case errors.Is(err, sms.ErrRecipient):
		return invalidArg("mobile", err.Error())
	case errors.As(err, &pr):
		s.log.WarnContext(ctx, "registry request refused", "method", method, "rule", pr.Rule)
		code := codes.FailedPrecondition
		if pr.Rule == policy.RuleRole {
			code = codes.PermissionDenied
		}
		return registryStatusf(code, firmav1.RegistryErrorReason_REGISTRY_ERROR_REASON_POLICY_REFUSED, pr.Reason, map[string]string{"rule": pr.Rule})
	case errors.As(err, &ce):
		s.log.WarnContext(ctx, "registry request refused", "method", method, "next_opening", ce.Next)
		return registryStatusf(codes.FailedPrecondition, firmav1.RegistryErrorReason_REGISTRY_ERROR_REASON_OUTSIDE_SERVICE_HOURS, ce.Error(),
			map[string]string{"next_opening": ce.Next.Format(time.RFC3339)})
	}
	return toStatus(ctx, s.log, method, err)
}

func registryStatusf(code codes.Code, reason firmav1.RegistryErrorReason, msg string, meta map[string]string) error {
	st := status.New(code, msg)
	if s, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason.String(), Domain: ErrorDomain, Metadata: meta}); err == nil {
		return s.Err()
	}
	return st.Err()
}
