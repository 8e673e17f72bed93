package api

import (
	"context"
	"encoding/hex"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// PortalService implements firmav1.PortalServiceServer for operators.
type PortalService struct {
	firmav1.UnimplementedPortalServiceServer
	reg     *portal.Registry
	log     *slog.Logger
	auditor transaction.Auditor
}

var _ firmav1.PortalServiceServer = (*PortalService)(nil)

// NewPortalService returns the operators' portal registry API.
func NewPortalService(reg *portal.Registry, log *slog.Logger) *PortalService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PortalService{reg: reg, log: log}
}

// WithAuditor makes every change to a portal an audit record.
func (s *PortalService) WithAuditor(a transaction.Auditor) *PortalService {
	s.auditor = a
	return s
}

// audit records a portal change by the calling operator; a lost record is
// logged, the change itself being in the store.
func (s *PortalService) audit(ctx context.Context, ev audit.Event, portalID, change string) {
	if s.auditor == nil {
		return
	}
	op := Operator(ctx)
	if op == "" {
		op = "unknown"
	}
	if err := s.auditor.Append(ctx, &audit.Record{Event: ev, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleAdmin, ID: op},
		Portal: portalID, Details: map[string]string{"change": change}}); err != nil {
		s.log.ErrorContext(ctx, "audit record lost", "event", ev, "err", err)
	}
}

// RegisterPortals registers PortalService on s.
func RegisterPortals(s *grpc.Server, svc *PortalService) {
	firmav1.RegisterPortalServiceServer(s, svc)
}

// portalErr maps the portal registry's errors to statuses: they are
// *errs.Error like every other's.
func (s *PortalService) portalErr(ctx context.Context, method string, err error) error {
	return toStatus(ctx, s.log, method, err)
}

func specIn(p *firmav1.PortalSpec) portal.Spec {
	return portal.Spec{Name: p.GetName(), RedirectURLs: p.GetRedirectUrls(), CertSHA256: p.GetCertSha256(), IssueAPIKey: p.GetApiKey(),
		Limits:      portal.Limits{MaxDocuments: int(p.GetMaxDocuments()), MaxDocBytes: p.GetMaxDocumentBytes(), RatePerMin: int(p.GetRatePerMinute())},
		CallbackURL: p.GetCallbackUrl()}
}

func portalOut(p *store.Portal) *firmav1.Portal {
	out := &firmav1.Portal{Id: p.ID, Name: p.Name, RedirectUrls: p.RedirectURLs, HasApiKey: p.APIKeyHash != nil,
		MaxDocuments: int32(p.MaxDocuments), MaxDocumentBytes: p.MaxDocBytes, RatePerMinute: int32(p.RatePerMin),
		CallbackUrl: p.CallbackURL, Status: p.Status, CreatedAt: tstamp(p.CreatedAt), UpdatedAt: tstamp(p.UpdatedAt)}
	if p.CertSHA256 != nil {
		out.CertSha256 = hex.EncodeToString(p.CertSHA256)
	}
	return out
}

// CreatePortal registers a portal; its secrets are in the answer only.
func (s *PortalService) CreatePortal(ctx context.Context, req *firmav1.CreatePortalRequest) (*firmav1.CreatePortalResponse, error) {
	c, err := s.reg.Create(ctx, specIn(req.GetSpec()))
	if err != nil {
		return nil, s.portalErr(ctx, "CreatePortal", err)
	}
	s.log.InfoContext(ctx, "portal created", "portal", c.Portal.ID, "operator", Operator(ctx))
	s.audit(ctx, audit.PortalCreated, c.Portal.ID, "created")
	return &firmav1.CreatePortalResponse{Portal: portalOut(c.Portal), ApiKey: c.APIKey, CallbackKey: c.CallbackKey}, nil
}

// GetPortal returns a portal.
func (s *PortalService) GetPortal(ctx context.Context, req *firmav1.GetPortalRequest) (*firmav1.Portal, error) {
	p, err := s.reg.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.portalErr(ctx, "GetPortal", err)
	}
	return portalOut(p), nil
}

// ListPortals pages through portals.
func (s *PortalService) ListPortals(ctx context.Context, req *firmav1.ListPortalsRequest) (*firmav1.ListPortalsResponse, error) {
	size := int(req.GetPageSize())
	if size <= 0 || size > 1000 {
		size = 100
	}
	ps, err := s.reg.List(ctx, req.GetPageToken(), size)
	if err != nil {
		return nil, s.portalErr(ctx, "ListPortals", err)
	}
	out := &firmav1.ListPortalsResponse{}
	for _, p := range ps {
		out.Portals = append(out.Portals, portalOut(p))
	}
	if len(ps) == size {
		out.NextPageToken = ps[len(ps)-1].ID
	}
	return out, nil
}

// UpdatePortal replaces a portal's settings.
func (s *PortalService) UpdatePortal(ctx context.Context, req *firmav1.UpdatePortalRequest) (*firmav1.UpdatePortalResponse, error) {
	p, key, err := s.reg.Update(ctx, req.GetId(), specIn(req.GetSpec()))
	if err != nil {
		return nil, s.portalErr(ctx, "UpdatePortal", err)
	}
	s.log.InfoContext(ctx, "portal updated", "portal", p.ID, "operator", Operator(ctx))
	s.audit(ctx, audit.PortalChanged, p.ID, "settings")
	return &firmav1.UpdatePortalResponse{Portal: portalOut(p), CallbackKey: key}, nil
}

// RotatePortalAPIKey issues a new API key.
func (s *PortalService) RotatePortalAPIKey(ctx context.Context, req *firmav1.GetPortalRequest) (*firmav1.RotatePortalKeyResponse, error) {
	k, err := s.reg.RotateAPIKey(ctx, req.GetId())
	if err != nil {
		return nil, s.portalErr(ctx, "RotatePortalAPIKey", err)
	}
	s.log.InfoContext(ctx, "portal api key rotated", "portal", req.GetId(), "operator", Operator(ctx))
	s.audit(ctx, audit.PortalChanged, req.GetId(), "access key rotated")
	return &firmav1.RotatePortalKeyResponse{Key: k}, nil
}

// RotatePortalCallbackKey issues a new callback key.
func (s *PortalService) RotatePortalCallbackKey(ctx context.Context, req *firmav1.GetPortalRequest) (*firmav1.RotatePortalKeyResponse, error) {
	k, err := s.reg.RotateCallbackKey(ctx, req.GetId())
	if err != nil {
		return nil, s.portalErr(ctx, "RotatePortalCallbackKey", err)
	}
	s.log.InfoContext(ctx, "portal callback key rotated", "portal", req.GetId(), "operator", Operator(ctx))
	s.audit(ctx, audit.PortalChanged, req.GetId(), "callback key rotated")
	return &firmav1.RotatePortalKeyResponse{Key: k}, nil
}

// SetPortalStatus enables or disables a portal.
func (s *PortalService) SetPortalStatus(ctx context.Context, req *firmav1.SetPortalStatusRequest) (*firmav1.Portal, error) {
	p, err := s.reg.SetStatus(ctx, req.GetId(), req.GetStatus())
	if err != nil {
		return nil, s.portalErr(ctx, "SetPortalStatus", err)
	}
	s.log.InfoContext(ctx, "portal status set", "portal", p.ID, "status", p.Status, "operator", Operator(ctx))
	if p.Status == store.PortalDisabled {
		s.audit(ctx, audit.PortalDisabled, p.ID, "disabled")
	} else {
		s.audit(ctx, audit.PortalChanged, p.ID, "enabled")
	}
	return portalOut(p), nil
}
