package api

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
)

// maxCertificateDER bounds an imported certificate; real ones are a few KB.
const maxCertificateDER = 64 << 10

// certErrors name, for ErrorInfo metadata, the CA errors a program may act on.
var certErrors = []struct {
	err  error
	name string
}{
	{ca.ErrNotAdvanced, "advanced_level_required"},
	{ca.ErrInactive, "citizen_inactive"},
	{ca.ErrUnknownCitizen, "citizen_not_found"},
	{ca.ErrNotFound, "certificate_not_found"},
	{ca.ErrAlreadyRevoked, "already_revoked"},
	{ca.ErrPending, "pending_external"},
	{ca.ErrExists, "certificate_exists"},
	{ca.ErrKeyMismatch, "key_mismatch"},
	{ca.ErrBadCertificate, "bad_certificate"},
	{ca.ErrWrongMode, "wrong_mode"},
	{ca.ErrNotInitialised, "ca_not_initialised"},
}

func certErrorMeta(err error, meta ...string) []string {
	for _, e := range certErrors {
		if errors.Is(err, e.err) {
			return append(meta, "ca_error", e.name)
		}
	}
	return meta
}

// CertificateService implements firmav1.CertificateServiceServer on a CA.
type CertificateService struct {
	firmav1.UnimplementedCertificateServiceServer
	ca  *ca.Authority
	log *slog.Logger
}

var _ firmav1.CertificateServiceServer = (*CertificateService)(nil)

// NewCertificateService returns the certificate service over a.
func NewCertificateService(a *ca.Authority, log *slog.Logger) *CertificateService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CertificateService{ca: a, log: log}
}

// RegisterCertificates registers CertificateService on s.
func RegisterCertificates(s *grpc.Server, a *ca.Authority, log *slog.Logger) {
	firmav1.RegisterCertificateServiceServer(s, NewCertificateService(a, log))
}

// caller tells the CA, for its audit records, which operator asked.
func caller(ctx context.Context) context.Context {
	if op := Operator(ctx); op != "" {
		return ca.WithActor(ctx, audit.Actor{Role: audit.RoleAdmin, ID: op})
	}
	return ctx
}

func (s *CertificateService) fail(ctx context.Context, method string, err error, meta ...string) error {
	return toStatus(ctx, s.log, method, err, certErrorMeta(err, meta...)...)
}

// checkCitizenID checks the shape of a DNI/NIE field; the registry checks
// the letter.
func checkCitizenID(field, id string) error {
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return invalidArg(field, "is required (a DNI or NIE)")
	case len(id) > 16:
		return invalidArg(field, "is too long for a DNI or NIE")
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-' || r == ' ' || r == '.') {
			return invalidArg(field, "may hold only digits, letters, spaces, dots and dashes")
		}
	}
	return nil
}

func checkRef(field, ref string) error {
	switch {
	case strings.TrimSpace(ref) == "":
		return invalidArg(field, "is required (a certificate ID or serial)")
	case len(ref) > 128:
		return invalidArg(field, "is too long")
	}
	return nil
}

var statusProto = map[string]firmav1.CertificateStatus{
	"pending": firmav1.CertificateStatus_CERTIFICATE_STATUS_PENDING,
	"valid":   firmav1.CertificateStatus_CERTIFICATE_STATUS_VALID,
	"revoked": firmav1.CertificateStatus_CERTIFICATE_STATUS_REVOKED,
	"expired": firmav1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED,
}

// CertificateProto returns the wire form of a certificate.
func CertificateProto(c *ca.Certificate) *firmav1.Certificate {
	out := &firmav1.Certificate{
		Id: c.ID, CitizenId: c.Owner, KeyId: c.KeyID, Serial: c.Serial, Issuer: c.Issuer,
		Status: statusProto[c.Status], SupersededBy: c.SupersededBy,
		NotBefore: ts(c.NotBefore), NotAfter: ts(c.NotAfter), CreateTime: ts(c.CreatedAt), RevokeTime: ts(c.RevokedAt),
	}
	if c.Status == "revoked" {
		out.RevocationReason = firmav1.RevocationReason(c.Reason)
	}
	if c.Cert != nil {
		out.Subject = c.Cert.Subject.String()
		out.Der = c.DER
		out.Pem = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	}
	if len(c.CSR) > 0 {
		out.CsrDer = c.CSR
		out.CsrPem = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: c.CSR}))
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func reasonFromProto(field string, r firmav1.RevocationReason) (ca.Reason, error) {
	if _, ok := firmav1.RevocationReason_name[int32(r)]; !ok {
		return 0, invalidArg(field, "unknown revocation reason")
	}
	return ca.Reason(r), nil
}

// EnsureCertificate returns the citizen's certificate, issuing on first use.
func (s *CertificateService) EnsureCertificate(ctx context.Context, req *firmav1.EnsureCertificateRequest) (*firmav1.EnsureCertificateResponse, error) {
	const method = "EnsureCertificate"
	if err := checkCitizenID("citizen_id", req.GetCitizenId()); err != nil {
		return nil, err
	}
	c, err := s.ca.EnsureCertificate(caller(ctx), req.GetCitizenId())
	if err != nil {
		meta := []string{"citizen_id", req.GetCitizenId()}
		if c != nil && errors.Is(err, ca.ErrPending) {
			meta = append(meta, "certificate_id", c.ID)
		}
		return nil, s.fail(ctx, method, err, meta...)
	}
	return &firmav1.EnsureCertificateResponse{Certificate: CertificateProto(c)}, nil
}

// IssueCertificate issues a certificate to a citizen who has no valid one.
func (s *CertificateService) IssueCertificate(ctx context.Context, req *firmav1.IssueCertificateRequest) (*firmav1.IssueCertificateResponse, error) {
	const method = "IssueCertificate"
	if err := checkCitizenID("citizen_id", req.GetCitizenId()); err != nil {
		return nil, err
	}
	c, err := s.ca.Issue(caller(ctx), req.GetCitizenId())
	if err != nil {
		return nil, s.fail(ctx, method, err, "citizen_id", req.GetCitizenId())
	}
	return &firmav1.IssueCertificateResponse{Certificate: CertificateProto(c)}, nil
}

// GetCertificate returns a certificate by ID or serial.
func (s *CertificateService) GetCertificate(ctx context.Context, req *firmav1.GetCertificateRequest) (*firmav1.GetCertificateResponse, error) {
	const method = "GetCertificate"
	if err := checkRef("id", req.GetId()); err != nil {
		return nil, err
	}
	c, err := s.ca.Certificate(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, method, err, "id", req.GetId())
	}
	return &firmav1.GetCertificateResponse{Certificate: CertificateProto(c)}, nil
}

// ListCertificates pages through certificates.
func (s *CertificateService) ListCertificates(ctx context.Context, req *firmav1.ListCertificatesRequest) (*firmav1.ListCertificatesResponse, error) {
	const method = "ListCertificates"
	if req.GetCitizenId() != "" {
		if err := checkCitizenID("citizen_id", req.GetCitizenId()); err != nil {
			return nil, err
		}
	}
	if req.GetPageSize() < 0 {
		return nil, invalidArg("page_size", "must not be negative")
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	status := ""
	if req.GetStatus() != firmav1.CertificateStatus_CERTIFICATE_STATUS_UNSPECIFIED {
		for k, v := range statusProto {
			if v == req.GetStatus() {
				status = k
			}
		}
		if status == "" {
			return nil, invalidArg("status", "unknown certificate status")
		}
	}
	list, err := s.ca.Certificates(ctx, ca.ListOptions{Citizen: req.GetCitizenId(), Status: status, After: req.GetPageToken(), Limit: size})
	if err != nil {
		return nil, s.fail(ctx, method, err)
	}
	resp := &firmav1.ListCertificatesResponse{}
	for _, c := range list {
		resp.Certificates = append(resp.Certificates, CertificateProto(c))
	}
	if len(list) == size {
		resp.NextPageToken = list[len(list)-1].ID
	}
	return resp, nil
}

// RenewCertificate gives the citizen a new key and certificate.
func (s *CertificateService) RenewCertificate(ctx context.Context, req *firmav1.RenewCertificateRequest) (*firmav1.RenewCertificateResponse, error) {
	const method = "RenewCertificate"
	if err := checkCitizenID("citizen_id", req.GetCitizenId()); err != nil {
		return nil, err
	}
	c, err := s.ca.Renew(caller(ctx), req.GetCitizenId())
	if err != nil {
		return nil, s.fail(ctx, method, err, "citizen_id", req.GetCitizenId())
	}
	return &firmav1.RenewCertificateResponse{Certificate: CertificateProto(c)}, nil
}

// RevokeCertificate revokes a certificate and destroys its key.
func (s *CertificateService) RevokeCertificate(ctx context.Context, req *firmav1.RevokeCertificateRequest) (*firmav1.RevokeCertificateResponse, error) {
	const method = "RevokeCertificate"
	if err := checkRef("id", req.GetId()); err != nil {
		return nil, err
	}
	reason, err := reasonFromProto("reason", req.GetReason())
	if err != nil {
		return nil, err
	}
	c, err := s.ca.Revoke(caller(ctx), req.GetId(), reason)
	if err != nil {
		return nil, s.fail(ctx, method, err, "id", req.GetId())
	}
	return &firmav1.RevokeCertificateResponse{Certificate: CertificateProto(c)}, nil
}

// RevokeCitizenCertificates revokes every live certificate of a citizen.
func (s *CertificateService) RevokeCitizenCertificates(ctx context.Context, req *firmav1.RevokeCitizenCertificatesRequest) (*firmav1.RevokeCitizenCertificatesResponse, error) {
	const method = "RevokeCitizenCertificates"
	if err := checkCitizenID("citizen_id", req.GetCitizenId()); err != nil {
		return nil, err
	}
	reason, err := reasonFromProto("reason", req.GetReason())
	if err != nil {
		return nil, err
	}
	list, err := s.ca.RevokeCitizen(caller(ctx), req.GetCitizenId(), reason)
	if err != nil {
		return nil, s.fail(ctx, method, err, "citizen_id", req.GetCitizenId())
	}
	resp := &firmav1.RevokeCitizenCertificatesResponse{}
	for _, c := range list {
		resp.Certificates = append(resp.Certificates, CertificateProto(c))
	}
	return resp, nil
}

// CreateCSR returns the citizen's pending certificate request.
func (s *CertificateService) CreateCSR(ctx context.Context, req *firmav1.CreateCSRRequest) (*firmav1.CreateCSRResponse, error) {
	const method = "CreateCSR"
	if err := checkCitizenID("citizen_id", req.GetCitizenId()); err != nil {
		return nil, err
	}
	c, err := s.ca.CSR(caller(ctx), req.GetCitizenId())
	if err != nil {
		return nil, s.fail(ctx, method, err, "citizen_id", req.GetCitizenId())
	}
	return &firmav1.CreateCSRResponse{Certificate: CertificateProto(c)}, nil
}

// ImportCertificate completes a pending request with an external CA's
// certificate.
func (s *CertificateService) ImportCertificate(ctx context.Context, req *firmav1.ImportCertificateRequest) (*firmav1.ImportCertificateResponse, error) {
	const method = "ImportCertificate"
	der := req.GetDer()
	switch {
	case len(der) > 0 && req.GetPem() != "":
		return nil, invalidArg("der", "give der or pem, not both")
	case req.GetPem() != "":
		blk, _ := pem.Decode([]byte(req.GetPem()))
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, invalidArg("pem", "is not a PEM CERTIFICATE block")
		}
		der = blk.Bytes
	case len(der) == 0:
		return nil, invalidArg("der", "is required (or pem)")
	}
	if len(der) > maxCertificateDER {
		return nil, invalidArg("der", "is larger than any certificate")
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, invalidArg("der", "is not an X.509 certificate: "+err.Error())
	}
	c, err := s.ca.Import(caller(ctx), der)
	if err != nil {
		return nil, s.fail(ctx, method, err)
	}
	return &firmav1.ImportCertificateResponse{Certificate: CertificateProto(c)}, nil
}

// GetCAChain returns the CA certificates.
func (s *CertificateService) GetCAChain(ctx context.Context, req *firmav1.GetCAChainRequest) (*firmav1.GetCAChainResponse, error) {
	resp := &firmav1.GetCAChainResponse{Mode: s.ca.Mode()}
	var b strings.Builder
	if c := s.ca.Issuing(); c != nil {
		resp.IssuingDer = c.Raw
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	if c := s.ca.Root(); c != nil {
		resp.RootDer = c.Raw
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	if c := s.ca.OCSPResponder(); c != nil {
		resp.OcspDer = c.Raw
	}
	if resp.IssuingDer == nil && s.ca.Mode() == ca.ModeInternal {
		return nil, s.fail(ctx, "GetCAChain", ca.ErrNotInitialised)
	}
	resp.Pem = b.String()
	return resp, nil
}
