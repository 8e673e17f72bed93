package v1http

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest"
)

// RegisterCertificates mounts CertificateService's REST JSON interface
// on mux, for the same operators as gRPC (bearer token or client
// certificate, checked by auth). Each route is the gRPC method of the same
// name; bodies are the request messages in proto JSON, responses the
// response messages with snake_case names, errors RFC 9457
// application/problem+json:
//
//	GET  /v1/certificates?citizen_id=&status=&page_size=&page_token=
//	GET  /v1/certificates/{id}                  ID or serial
//	POST /v1/certificates/ensure                {"citizen_id": ...}
//	POST /v1/certificates/issue                 {"citizen_id": ...}
//	POST /v1/certificates/renew                 {"citizen_id": ...}
//	POST /v1/certificates/csr                   {"citizen_id": ...}
//	POST /v1/certificates/import                {"pem": ...} or {"der": base64}
//	POST /v1/certificates/{id}/revoke           {"reason": "REVOCATION_REASON_KEY_COMPROMISE"}
//	POST /v1/certificates/revoke-citizen        {"citizen_id": ..., "reason": ...}
//	GET  /v1/ca/chain
func RegisterCertificates(mux rest.Router, s *api.CertificateService, auth *api.Auth) {
	h := certHTTP{s: s, auth: auth}
	post := func(pattern string, newReq func() proto.Message, call func(context.Context, *http.Request, proto.Message) (proto.Message, error)) {
		mux.HandleFunc("POST "+pattern, h.json(newReq, call))
	}
	mux.HandleFunc("GET /v1/certificates", h.query(func(ctx context.Context, r *http.Request) (proto.Message, error) {
		q := r.URL.Query()
		req := &firmav1.ListCertificatesRequest{CitizenId: q.Get("citizen_id"), PageToken: q.Get("page_token")}
		if v := q.Get("page_size"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, invalidArg("page_size", "must be a positive number")
			}
			req.PageSize = int32(min(n, api.MaxPageSize))
		}
		if v := q.Get("status"); v != "" {
			st, ok := firmav1.CertificateStatus_value["CERTIFICATE_STATUS_"+strings.ToUpper(v)]
			if !ok {
				return nil, invalidArg("status", "must be pending, valid, revoked or expired")
			}
			req.Status = firmav1.CertificateStatus(st)
		}
		return s.ListCertificates(ctx, req)
	}))
	mux.HandleFunc("GET /v1/certificates/{id}", h.query(func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return s.GetCertificate(ctx, &firmav1.GetCertificateRequest{Id: r.PathValue("id")})
	}))
	mux.HandleFunc("GET /v1/ca/chain", h.query(func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return s.GetCAChain(ctx, &firmav1.GetCAChainRequest{})
	}))
	post("/v1/certificates/ensure", func() proto.Message { return &firmav1.EnsureCertificateRequest{} },
		func(ctx context.Context, _ *http.Request, m proto.Message) (proto.Message, error) {
			return s.EnsureCertificate(ctx, m.(*firmav1.EnsureCertificateRequest))
		})
	post("/v1/certificates/issue", func() proto.Message { return &firmav1.IssueCertificateRequest{} },
		func(ctx context.Context, _ *http.Request, m proto.Message) (proto.Message, error) {
			return s.IssueCertificate(ctx, m.(*firmav1.IssueCertificateRequest))
		})
	post("/v1/certificates/renew", func() proto.Message { return &firmav1.RenewCertificateRequest{} },
		func(ctx context.Context, _ *http.Request, m proto.Message) (proto.Message, error) {
			return s.RenewCertificate(ctx, m.(*firmav1.RenewCertificateRequest))
		})
	post("/v1/certificates/csr", func() proto.Message { return &firmav1.CreateCSRRequest{} },
		func(ctx context.Context, _ *http.Request, m proto.Message) (proto.Message, error) {
			return s.CreateCSR(ctx, m.(*firmav1.CreateCSRRequest))
		})
	post("/v1/certificates/import", func() proto.Message { return &firmav1.ImportCertificateRequest{} },
		func(ctx context.Context, _ *http.Request, m proto.Message) (proto.Message, error) {
			return s.ImportCertificate(ctx, m.(*firmav1.ImportCertificateRequest))
		})
	post("/v1/certificates/{id}/revoke", func() proto.Message { return &firmav1.RevokeCertificateRequest{} },
		func(ctx context.Context, r *http.Request, m proto.Message) (proto.Message, error) {
			req := m.(*firmav1.RevokeCertificateRequest)
			req.Id = r.PathValue("id")
			return s.RevokeCertificate(ctx, req)
		})
	post("/v1/certificates/revoke-citizen", func() proto.Message { return &firmav1.RevokeCitizenCertificatesRequest{} },
		func(ctx context.Context, _ *http.Request, m proto.Message) (proto.Message, error) {
			return s.RevokeCitizenCertificates(ctx, m.(*firmav1.RevokeCitizenCertificatesRequest))
		})
}

type certHTTP struct {
	s    *api.CertificateService
	auth *api.Auth
}

// authed authenticates the operator as the gRPC interceptor does and
// returns the call's context, or writes the problem and returns nil.
func (h certHTTP) authed(w http.ResponseWriter, r *http.Request) context.Context {
	ctx, err := h.auth.Operator(callContext(r))
	if err != nil {
		writeProblem(w, err)
		return nil
	}
	return ctx
}

func (h certHTTP) json(newReq func() proto.Message, call func(context.Context, *http.Request, proto.Message) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := h.authed(w, r)
		if ctx == nil {
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
		if err != nil {
			writeProblem(w, invalidArg("body", "cannot be read or is larger than 1 MiB"))
			return
		}
		m := newReq()
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := restIn.Unmarshal(body, m); err != nil {
				writeProblem(w, invalidArg("body", "is not a valid JSON request: "+err.Error()))
				return
			}
		}
		resp, err := call(ctx, r, m)
		writeResult(w, r, resp, err)
	}
}

func (h certHTTP) query(call func(context.Context, *http.Request) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := h.authed(w, r)
		if ctx == nil {
			return
		}
		resp, err := call(ctx, r)
		writeResult(w, r, resp, err)
	}
}
