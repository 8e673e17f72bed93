package v1http

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest"
)

// RegisterRegistry mounts the registry's REST JSON interface under
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
func RegisterRegistry(mux rest.Router, s *api.RegistryService) {
	type route struct {
		pattern string
		handle  func(w http.ResponseWriter, r *http.Request)
	}
	for _, rt := range []route{
		{"POST /v1/registry/registrations/in-person", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.RegisterPersonRequest) (proto.Message, error) {
			return s.RegisterInPerson(ctx, m)
		})},
		{"POST /v1/registry/registrations/video-call", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.RegisterPersonRequest) (proto.Message, error) {
			return s.RegisterVideoCall(ctx, m)
		})},
		{"GET /v1/registry/service-hours", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.GetServiceHours(ctx, &firmav1.GetServiceHoursRequest{})
		})},
		{"GET /v1/registry/citizens/{id}", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.GetCitizen(ctx, &firmav1.GetCitizenRequest{Id: r.PathValue("id")})
		})},
		{"GET /v1/registry/citizens", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			q := r.URL.Query()
			req := &firmav1.ListCitizensRequest{PageToken: q.Get("page_token")}
			if v := q.Get("page_size"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, invalidArg("page_size", "must be a number")
				}
				req.PageSize = int32(min(n, api.MaxPageSize))
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
		{"POST /v1/registry/citizens/{id}/downgrade", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.ChangeCitizenRequest) (proto.Message, error) {
			m.Id = r.PathValue("id")
			return s.DowngradeCitizen(ctx, m)
		})},
		{"POST /v1/registry/citizens/{id}/remove", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.ChangeCitizenRequest) (proto.Message, error) {
			m.Id = r.PathValue("id")
			return s.RemoveCitizen(ctx, m)
		})},
		{"POST /v1/registry/citizens/{id}/activation", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.ReissueActivation(ctx, &firmav1.GetCitizenRequest{Id: r.PathValue("id")})
		})},
		{"PUT /v1/registry/fiscal-records/{id}", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.PutFiscalRecordRequest) (proto.Message, error) {
			m.Id = r.PathValue("id")
			return s.PutFiscalRecord(ctx, m)
		})},
		{"GET /v1/registry/sms-outbox", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			return s.ListSMS(ctx, &firmav1.ListSMSRequest{To: r.URL.Query().Get("to"), Limit: int32(min(max(n, 0), 1000))})
		})},
		{"GET /v1/registry/letters", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			return s.ListLetters(ctx, &firmav1.ListLettersRequest{Id: r.URL.Query().Get("id"), Limit: int32(min(max(n, 0), 1000))})
		})},
		{"POST /v1/registry/letters", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.RequestLetterRequest) (proto.Message, error) {
			return s.RequestLetter(ctx, m)
		})},
		{"POST /v1/registry/letters/redeem", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.RedeemLetterRequest) (proto.Message, error) {
			return s.RedeemLetter(ctx, m)
		})},
		{"POST /v1/registry/certificate/challenges", queryRoute(func(ctx context.Context, r *http.Request) (proto.Message, error) {
			return s.NewChallenge(ctx, &firmav1.NewChallengeRequest{})
		})},
		{"POST /v1/registry/certificate/registrations", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.StartCertificateRegistrationRequest) (proto.Message, error) {
			return s.StartCertificateRegistration(ctx, m)
		})},
		{"POST /v1/registry/certificate/registrations/{pending}/confirm", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.ConfirmCertificateRegistrationRequest) (proto.Message, error) {
			m.PendingId = r.PathValue("pending")
			return s.ConfirmCertificateRegistration(ctx, m)
		})},
		{"POST /v1/registry/password", jsonRoute(func(ctx context.Context, r *http.Request, m *firmav1.SetPasswordRequest) (proto.Message, error) {
			return s.SetPassword(ctx, m)
		})},
		{"POST /v1/registry/import", serveImport(s)},
	} {
		mux.HandleFunc(rt.pattern, rt.handle)
	}
}

// serveImport takes a CSV body (Content-Type text/csv); operators only.
func serveImport(s *api.RegistryService) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.ImportCSV(callContext(r), http.MaxBytesReader(w, r.Body, api.MaxImportBytes))
		writeResult(w, r, resp, err)
	}
}
