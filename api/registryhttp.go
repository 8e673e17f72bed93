package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/problem"
	"github.com/firma-cloud/firma/registry"
)

// maxJSONBody bounds a REST request body; registrations are a few hundred
// bytes, certificate chains a few kilobytes.
const maxJSONBody = 1 << 20

var (
	restIn  = protojson.UnmarshalOptions{}
	restOut = protojson.MarshalOptions{UseProtoNames: true}
)

// RegisterRegistryHTTP mounts the registry's REST JSON interface under
// /v1/registry/ on mux. Each route is a RegistryService method: bodies
// are its request message in proto JSON (snake_case or lowerCamelCase
// field names), responses its response message with snake_case names,
// and errors are RFC 9457 application/problem+json. Registration responses
// are the PDF confirmation instead when the request says
// Accept: application/pdf.
//
//	staff (Authorization: Bearer <staff or operator token>)
//	POST /v1/registry/registrations/in-person        RegisterInPerson
//	POST /v1/registry/registrations/video-call       RegisterVideoCall
//	GET  /v1/registry/citizens?level=&status=&page_size=&page_token=
//	GET  /v1/registry/citizens/{id}                  GetCitizen
//	POST /v1/registry/citizens/{id}/downgrade        DowngradeCitizen {"reason"}
//	POST /v1/registry/citizens/{id}/remove           RemoveCitizen {"reason"}
//	POST /v1/registry/citizens/{id}/activation       ReissueActivation
//	PUT  /v1/registry/fiscal-records/{id}            PutFiscalRecord
//	operators
//	POST /v1/registry/import (text/csv body)         ImportCitizens
//	GET  /v1/registry/sms-outbox?to=&limit=          ListSMS
//	GET  /v1/registry/letters?id=&limit=             ListLetters
//	citizens (no credentials)
//	GET  /v1/registry/service-hours                  GetServiceHours
//	POST /v1/registry/letters                        RequestLetter {"id"}
//	POST /v1/registry/letters/redeem                 RedeemLetter
//	POST /v1/registry/certificate/challenges         NewChallenge
//	POST /v1/registry/certificate/registrations      StartCertificateRegistration (TLS client certificate or signed challenge)
//	POST /v1/registry/certificate/registrations/{pending}/confirm   ConfirmCertificateRegistration
//	POST /v1/registry/password                       SetPassword
func (s *RegistryService) RegisterRegistryHTTP(mux *http.ServeMux) {
	type route struct {
		pattern string
		handle  func(w http.ResponseWriter, r *http.Request)
	}
	for _, rt := range []route{
		{"POST /v1/registry/registrations/in-person", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.RegisterPersonRequest) (proto.Message, error) {
			return s.RegisterInPerson(ctx, m)
		})},
		{"POST /v1/registry/registrations/video-call", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.RegisterPersonRequest) (proto.Message, error) {
			return s.RegisterVideoCall(ctx, m)
		})},
		{"GET /v1/registry/service-hours", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.GetServiceHours(ctx, &firmav1.GetServiceHoursRequest{})
		})},
		{"GET /v1/registry/citizens/{id}", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.GetCitizen(ctx, &firmav1.GetCitizenRequest{Id: r.PathValue("id")})
		})},
		{"GET /v1/registry/citizens", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			q := r.URL.Query()
			req := &firmav1.ListCitizensRequest{PageToken: q.Get("page_token")}
			if v := q.Get("page_size"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, invalidArg("page_size", "must be a number")
				}
				req.PageSize = int32(min(n, MaxPageSize))
			}
			if v := q.Get("level"); v != "" {
				l, ok := firmav1.RegistrationLevel_value["REGISTRATION_LEVEL_"+strings.ToUpper(v)]
				if !ok {
					return nil, invalidArg("level", "must be basic or advanced")
				}
				req.Level = firmav1.RegistrationLevel(l)
			}
			if v := q.Get("status"); v != "" {
				st, ok := firmav1.CitizenStatus_value["CITIZEN_STATUS_"+strings.ToUpper(v)]
				if !ok {
					return nil, invalidArg("status", "must be active, locked or removed")
				}
				req.Status = firmav1.CitizenStatus(st)
			}
			return s.ListCitizens(ctx, req)
		})},
		{"POST /v1/registry/citizens/{id}/downgrade", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.ChangeCitizenRequest) (proto.Message, error) {
			m.Id = r.PathValue("id")
			return s.DowngradeCitizen(ctx, m)
		})},
		{"POST /v1/registry/citizens/{id}/remove", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.ChangeCitizenRequest) (proto.Message, error) {
			m.Id = r.PathValue("id")
			return s.RemoveCitizen(ctx, m)
		})},
		{"POST /v1/registry/citizens/{id}/activation", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.ReissueActivation(ctx, &firmav1.GetCitizenRequest{Id: r.PathValue("id")})
		})},
		{"PUT /v1/registry/fiscal-records/{id}", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.PutFiscalRecordRequest) (proto.Message, error) {
			m.Id = r.PathValue("id")
			return s.PutFiscalRecord(ctx, m)
		})},
		{"GET /v1/registry/sms-outbox", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			return s.ListSMS(ctx, &firmav1.ListSMSRequest{To: r.URL.Query().Get("to"), Limit: int32(min(max(n, 0), 1000))})
		})},
		{"GET /v1/registry/letters", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			return s.ListLetters(ctx, &firmav1.ListLettersRequest{Id: r.URL.Query().Get("id"), Limit: int32(min(max(n, 0), 1000))})
		})},
		{"POST /v1/registry/letters", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.RequestLetterRequest) (proto.Message, error) {
			return s.RequestLetter(ctx, m)
		})},
		{"POST /v1/registry/letters/redeem", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.RedeemLetterRequest) (proto.Message, error) {
			return s.RedeemLetter(ctx, m)
		})},
		{"POST /v1/registry/certificate/challenges", queryRoute(s, func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.NewChallenge(ctx, &firmav1.NewChallengeRequest{})
		})},
		{"POST /v1/registry/certificate/registrations", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.StartCertificateRegistrationRequest) (proto.Message, error) {
			return s.StartCertificateRegistration(ctx, m)
		})},
		{"POST /v1/registry/certificate/registrations/{pending}/confirm", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.ConfirmCertificateRegistrationRequest) (proto.Message, error) {
			m.PendingId = r.PathValue("pending")
			return s.ConfirmCertificateRegistration(ctx, m)
		})},
		{"POST /v1/registry/password", jsonRoute(s, func(ctx context.Context, r *http.Request, m *firmav1.SetPasswordRequest) (proto.Message, error) {
			return s.SetPassword(ctx, m)
		})},
		{"POST /v1/registry/import", s.serveImport},
	} {
		mux.HandleFunc(rt.pattern, rt.handle)
	}
}

// callContext gives a REST request what the gRPC handlers read from a
// call: the Authorization header as metadata and the TLS state as peer.
func callContext(r *http.Request) context.Context {
	ctx := r.Context()
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		ctx = metadata.NewIncomingContext(ctx, metadata.MD{"authorization": h})
	}
	p := &peer.Peer{Addr: remoteAddr(r)}
	if r.TLS != nil {
		p.AuthInfo = credentials.TLSInfo{State: *r.TLS}
	}
	return peer.NewContext(ctx, p)
}

type httpAddr string

func (a httpAddr) Network() string { return "tcp" }
func (a httpAddr) String() string  { return string(a) }

func remoteAddr(r *http.Request) net.Addr { return httpAddr(r.RemoteAddr) }

// jsonRoute decodes the body into a fresh M and calls fn.
func jsonRoute[M any, PM interface {
	*M
	proto.Message
}](s *RegistryService, fn func(context.Context, *http.Request, PM) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := PM(new(M))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
		if err != nil {
			writeProblem(w, invalidArg("body", "cannot be read or is larger than 1 MiB"))
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := restIn.Unmarshal(body, m); err != nil {
				writeProblem(w, invalidArg("body", "is not a valid JSON request: "+err.Error()))
				return
			}
		}
		resp, err := fn(callContext(r), r, m)
		writeResult(w, r, resp, err)
	}
}

// queryRoute calls fn for a request without a body.
func queryRoute(s *RegistryService, fn func(context.Context, *http.Request) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		resp, err := fn(callContext(r), r)
		writeResult(w, r, resp, err)
	}
}

func writeResult(w http.ResponseWriter, r *http.Request, resp proto.Message, err error) {
	if err != nil {
		writeProblem(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // responses may hold activation codes
	if reg, ok := resp.(*firmav1.RegistrationResponse); ok && wantsPDF(r) && len(reg.GetConfirmationPdf()) > 0 {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="clave-confirmation-%s.pdf"`, reg.GetCitizen().GetId()))
		w.Write(reg.GetConfirmationPdf())
		return
	}
	b, err := restOut.Marshal(resp)
	if err != nil {
		writeProblem(w, status.Error(codes.Internal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func wantsPDF(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := strings.Cut(strings.TrimSpace(a), ";"); mt == "application/pdf" {
			return true
		}
	}
	return false
}

// Problem is an RFC 9457 problem document; the extension members carry
// the ErrorInfo reason and metadata (field, rule, next_opening).
type Problem struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Status      int    `json:"status"`
	Detail      string `json:"detail,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Field       string `json:"field,omitempty"`
	Rule        string `json:"rule,omitempty"`
	NextOpening string `json:"next_opening,omitempty"`
}

var httpStatus = map[codes.Code]int{
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.FailedPrecondition: http.StatusConflict,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.Unimplemented:      http.StatusNotImplemented,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.Canceled:           499,
}

// writeProblem turns a gRPC status error into application/problem+json.
func writeProblem(w http.ResponseWriter, err error) {
	st, _ := status.FromError(err)
	code, ok := httpStatus[st.Code()]
	if !ok {
		code = http.StatusInternalServerError
	}
	p := Problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			p.Reason = d.GetReason()
			p.Type = "https://firma.cloud/problems/" + strings.ToLower(strings.ReplaceAll(d.GetReason(), "_", "-"))
			p.Field, p.Rule, p.NextOpening = d.GetMetadata()["field"], d.GetMetadata()["rule"], d.GetMetadata()["next_opening"]
		case *errdetails.BadRequest:
			if v := d.GetFieldViolations(); len(v) > 0 && p.Field == "" {
				p.Field = v[0].GetField()
			}
		}
	}
	if code == http.StatusInternalServerError {
		p.Detail = "internal error"
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="firma"`)
	}
	problem.Write(w, code, p)
}

// serveImport takes a CSV body (Content-Type text/csv); operators only.
func (s *RegistryService) serveImport(w http.ResponseWriter, r *http.Request) {
	ctx := callContext(r)
	if err := s.needOperator(ctx); err != nil {
		writeProblem(w, err)
		return
	}
	rep, err := s.reg.Import(ctx, http.MaxBytesReader(w, r.Body, maxImportBytes), registry.ImportOptions{})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeProblem(w, invalidArg("body", fmt.Sprintf("larger than %d bytes", maxImportBytes)))
		case errors.Is(err, registry.ErrHeader):
			writeProblem(w, invalidArg("body", err.Error()))
		default:
			writeProblem(w, s.status(ctx, "ImportCitizens", err))
		}
		return
	}
	resp := &firmav1.ImportCitizensResponse{Rows: int32(rep.Rows), Created: int32(rep.Created)}
	for _, e := range rep.Existing {
		resp.Existing = append(resp.Existing, &firmav1.ImportRowError{Line: int32(e.Line), Error: e.Err.Error()})
	}
	for _, e := range rep.Bad {
		resp.Bad = append(resp.Bad, &firmav1.ImportRowError{Line: int32(e.Line), Error: e.Err.Error()})
	}
	writeResult(w, r, resp, nil)
}
