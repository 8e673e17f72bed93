package cschttp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/store"
)

// maxBody bounds a request body: multisign hashes of SHA-512 in base64
// plus the rest fit well within it.
const maxBody = 1 << 20

// maxDocBody bounds signDoc's body, which carries whole documents in
// base64.
const maxDocBody = 16 << 20

// Prefix is where the API is mounted.
const Prefix = "/csc/v2/"

// server is the CSC API's HTTP binding over one service.
type server struct {
	svc *csc.Service
	log *slog.Logger
}

// Handler serves the CSC API under Prefix, authenticating callers with
// portals. log nil discards.
func Handler(svc *csc.Service, portals portal.Authenticator, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	register(mux, svc, portals, log)
	return mux
}

// Register mounts the API on mux, each method under its own pattern.
func Register(mux rest.Router, svc *csc.Service, portals portal.Authenticator, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	register(mux, svc, portals, log)
}

func register(mux rest.Router, svc *csc.Service, portals portal.Authenticator, log *slog.Logger) {
	s := &server{svc: svc, log: log}
	mux.HandleFunc("GET "+Prefix+"info", s.serveInfo)
	mux.HandleFunc("POST "+Prefix+"info", s.serveInfo)
	mux.Handle("POST "+Prefix+"credentials/list", s.authed(portals, "credentials/list", s.serveList))
	mux.Handle("POST "+Prefix+"credentials/info", s.authed(portals, "credentials/info", s.serveCredInfo))
	mux.Handle("POST "+Prefix+"credentials/sendOTP", s.authed(portals, "credentials/sendOTP", s.serveSendOTP))
	mux.Handle("POST "+Prefix+"credentials/authorize", s.authed(portals, "credentials/authorize", s.serveAuthorize))
	mux.Handle("POST "+Prefix+"credentials/getChallenge", s.authed(portals, "credentials/getChallenge", s.serveGetChallenge))
	mux.Handle("POST "+Prefix+"credentials/authorizeCheck", s.authed(portals, "credentials/authorizeCheck", s.serveAuthorizeCheck))
	mux.Handle("POST "+Prefix+"credentials/extendTransaction", s.authed(portals, "credentials/extendTransaction", s.serveExtend))
	mux.Handle("POST "+Prefix+"auth/revoke", s.authed(portals, "auth/revoke", s.serveAuthRevoke))
	mux.Handle("POST "+Prefix+"signatures/signHash", s.authed(portals, "signatures/signHash", s.serveSignHash))
	mux.Handle("POST "+Prefix+"signatures/signDoc", s.authed(portals, "signatures/signDoc", s.serveSignDoc))
	mux.Handle("POST "+Prefix+"signatures/timestamp", s.authed(portals, "signatures/timestamp", s.serveTimestamp))
	// Anything else under the prefix, wrong methods included, gets a CSC
	// error rather than the mux's plain-text one.
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(csc.Methods, strings.TrimPrefix(r.URL.Path, Prefix)) {
			w.Header().Set("Allow", http.MethodPost)
			writeForm(w, http.StatusMethodNotAllowed, csc.CodeInvalidRequest,
				fmt.Sprintf("%s takes POST, not %s", strings.TrimPrefix(r.URL.Path, Prefix), r.Method))
			return
		}
		writeForm(w, http.StatusNotFound, csc.CodeInvalidRequest,
			fmt.Sprintf("no CSC method %s %s; methods: info, %s (all POST)", r.Method, strings.TrimPrefix(r.URL.Path, Prefix), strings.Join(csc.Methods, ", ")))
	})
}

type handlerFunc func(ctx context.Context, caller csc.Caller, body []byte) (any, error)

// authed authenticates the portal, reads the body and writes the answer
// or the error in CSC form.
func (s *server) authed(portals portal.Authenticator, method string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		caller, err := authenticate(ctx, s.svc, portals, r)
		if err == nil {
			var body []byte
			limit := int64(maxBody)
			if method == "signatures/signDoc" {
				limit = maxDocBody
			}
			if body, err = readBody(w, r, limit); err == nil {
				var out any
				if out, err = h(ctx, caller, body); err == nil {
					s.svc.CountRequest(method, "ok")
					w.Header().Set("Cache-Control", "no-store")
					if out == nil {
						w.WriteHeader(http.StatusNoContent)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					json.NewEncoder(w).Encode(out)
					return
				}
			}
		}
		f := formOf(err)
		s.svc.CountRequest(method, f.code)
		switch {
		case f.status >= 500:
			s.log.ErrorContext(ctx, "csc request failed", "method", method, "portal", caller.ID, "code", f.code, "err", err)
		default:
			s.log.WarnContext(ctx, "csc request refused", "method", method, "portal", caller.ID, "code", f.code, "reason", f.desc)
		}
		f.write(w)
	})
}

func (s *server) serveInfo(w http.ResponseWriter, r *http.Request) {
	s.svc.CountRequest("info", "ok")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.svc.Info())
}

// authenticate finds the calling portal by bearer API key, else by TLS
// client certificate.
func authenticate(ctx context.Context, svc *csc.Service, portals portal.Authenticator, r *http.Request) (csc.Caller, error) {
	var (
		p   *store.Portal
		err error
	)
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return csc.Caller{}, errs.New(errs.Unauthenticated, csc.CodeInvalidToken, "Authorization must be \"Bearer <portal API key>\"")
		}
		tok = strings.TrimSpace(tok)
		p, err = portals.AuthenticateAPIKey(ctx, tok)
		if errors.Is(err, portal.ErrUnauthenticated) || errors.Is(err, portal.ErrNotFound) {
			// Not an API key: an OAuth access token of credential scope.
			if c, ok := svc.TokenCaller(ctx, tok); ok {
				// The portal must still be enabled (*portal.Registry
				// tells; another Authenticator is taken at its word).
				g, canGet := portals.(interface {
					Get(ctx context.Context, id string) (*store.Portal, error)
				})
				if !canGet {
					return c, nil
				}
				if p, err = g.Get(ctx, c.ID); err == nil && p.Status == store.PortalActive {
					c.Name = p.Name
					return c, nil
				}
				if err == nil {
					err = portal.ErrDisabled
				}
			}
		}
	} else if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		// Only a certificate the TLS layer verified against the client CAs
		// identifies a portal.
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		p, err = portals.AuthenticateCert(ctx, sum[:])
	} else {
		return csc.Caller{}, errs.New(errs.Unauthenticated, csc.CodeInvalidToken, "missing portal credentials: send the API key as a bearer token or use the portal's client certificate")
	}
	switch {
	case errors.Is(err, portal.ErrDisabled):
		return csc.Caller{}, errs.New(errs.Denied, csc.CodeAccessDenied, "the portal is disabled")
	case errors.Is(err, portal.ErrUnauthenticated), errors.Is(err, portal.ErrNotFound):
		return csc.Caller{}, errs.New(errs.Unauthenticated, csc.CodeInvalidToken, "portal credentials not recognised")
	case err != nil:
		return csc.Caller{}, internal(fmt.Errorf("authenticate portal: %w", err))
	}
	return csc.Caller{ID: p.ID, Name: p.Name}, nil
}

func readBody(w http.ResponseWriter, r *http.Request, maxBody int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, form{status: http.StatusUnsupportedMediaType, code: csc.CodeInvalidRequest, desc: "the body must be application/json"}
		}
	}
	// A declared length over the bound is refused before reading.
	if r.ContentLength > maxBody {
		return nil, errs.Newf(errs.TooLarge, csc.CodeInvalidRequest, "the body is over %d bytes", maxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.Newf(errs.TooLarge, csc.CodeInvalidRequest, "the body is over %d bytes", maxBody)
		}
		return nil, invalid("the body could not be read")
	}
	return body, nil
}

// decode parses a JSON object; unknown members are allowed, since the
// specification adds optional ones (clientData, lang...).
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return invalid("the body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid("invalid type for parameter %s: want %s", te.Field, te.Type)
		}
		return invalid("the body is not valid JSON: %v", err)
	}
	return nil
}

type listBody struct {
	UserID         string `json:"userID"`
	CredentialInfo bool   `json:"credentialInfo"` // v2
	CredInfo       bool   `json:"credInfo"`       // v1
	Certificates   string `json:"certificates"`
	CertInfo       bool   `json:"certInfo"`
	AuthInfo       bool   `json:"authInfo"`
	OnlyValid      bool   `json:"onlyValid"`
	Lang           string `json:"lang"`
	ClientData     string `json:"clientData"`
	MaxResults     int    `json:"maxResults"`
	PageToken      string `json:"pageToken"`
}

func (s *server) serveList(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b listBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if b.UserID == "" {
		// With an access token, the citizen is the token's.
		b.UserID = c.Citizen
	}
	return s.svc.List(ctx, c, csc.ListRequest{UserID: b.UserID, CredInfo: b.CredentialInfo || b.CredInfo, OnlyValid: b.OnlyValid,
		MaxResults: b.MaxResults, PageToken: b.PageToken,
		Info: csc.InfoRequest{Certificates: b.Certificates, CertInfo: b.CertInfo, AuthInfo: b.AuthInfo, Lang: b.Lang}})
}

type infoBody struct {
	CredentialID string `json:"credentialID"`
	Certificates string `json:"certificates"`
	CertInfo     bool   `json:"certInfo"`
	AuthInfo     bool   `json:"authInfo"`
	Lang         string `json:"lang"`
	ClientData   string `json:"clientData"`
}

func (s *server) serveCredInfo(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b infoBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return s.svc.CredentialInfo(ctx, c, b.CredentialID, csc.InfoRequest{Certificates: b.Certificates, CertInfo: b.CertInfo, AuthInfo: b.AuthInfo, Lang: b.Lang})
}

type sendOTPBody struct {
	CredentialID string `json:"credentialID"`
}

func (s *server) serveSendOTP(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b sendOTPBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return nil, s.svc.SendOTP(ctx, c, b.CredentialID)
}

type authData struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

type authorizeBody struct {
	CredentialID  string     `json:"credentialID"`
	NumSignatures *int       `json:"numSignatures"`
	Hashes        []string   `json:"hashes"`
	HashAlgorithm string     `json:"hashAlgorithmOID"`
	HashAlgo      string     `json:"hashAlgo"` // CSC v1 name
	AuthData      []authData `json:"authData"`
	OTP           string     `json:"OTP"` // CSC v1 form
	PIN           string     `json:"PIN"`
	Description   string     `json:"description"`
}

type authorizeResponse struct {
	SAD       string `json:"SAD"`
	ExpiresIn int    `json:"expiresIn"`
}

func (s *server) serveAuthorize(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b authorizeBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if b.NumSignatures == nil {
		return nil, invalid("missing number parameter numSignatures")
	}
	if b.PIN != "" {
		return nil, invalid("this credential takes no PIN, only the OTP")
	}
	otp := b.OTP
	for _, a := range b.AuthData {
		switch a.ID {
		case "otp", "OTP":
			otp = a.Value
		default:
			return nil, invalid("authData id %q is unknown; the credential needs only {\"id\": \"otp\"}", a.ID)
		}
	}
	alg := b.HashAlgorithm
	if alg == "" {
		alg = b.HashAlgo
	}
	a, err := s.svc.Authorize(ctx, c, csc.AuthorizeRequest{CredentialID: b.CredentialID, NumSignatures: *b.NumSignatures, Hashes: b.Hashes,
		HashAlgorithm: alg, OTP: otp, Description: b.Description})
	if err != nil {
		return nil, err
	}
	return &authorizeResponse{SAD: a.SAD, ExpiresIn: a.ExpiresIn}, nil
}

type signHashBody struct {
	CredentialID   string   `json:"credentialID"`
	SAD            string   `json:"SAD"`
	Hashes         []string `json:"hashes"` // v2
	Hash           []string `json:"hash"`   // v1
	HashAlgorithm  string   `json:"hashAlgorithmOID"`
	HashAlgo       string   `json:"hashAlgo"`
	SignAlgo       string   `json:"signAlgo"`
	SignAlgoParams string   `json:"signAlgoParams"`
	OperationMode  string   `json:"operationMode"`
}

type signHashResponse struct {
	Signatures []string `json:"signatures"`
}

func (s *server) serveSignHash(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b signHashBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if b.OperationMode != "" && b.OperationMode != "S" {
		return nil, invalid("operationMode %q: only synchronous (\"S\") signing is offered", b.OperationMode)
	}
	hashes := b.Hashes
	if len(hashes) == 0 {
		hashes = b.Hash
	}
	alg := b.HashAlgorithm
	if alg == "" {
		alg = b.HashAlgo
	}
	sigs, err := s.svc.SignHash(ctx, c, csc.SignHashRequest{CredentialID: b.CredentialID, SAD: b.SAD, Hashes: hashes, HashAlgorithm: alg,
		SignAlgo: b.SignAlgo, SignAlgoParams: b.SignAlgoParams})
	if err != nil {
		return nil, err
	}
	out := &signHashResponse{Signatures: make([]string, len(sigs))}
	for i, sig := range sigs {
		out.Signatures[i] = base64.StdEncoding.EncodeToString(sig)
	}
	return out, nil
}

// The CSC error form: {"error", "error_description"}. The service's
// refusals are *errs.Error values; formOf takes their status from the kind,
// in the one table below, and their CSC code from the error when it is one
// (csc.Codes), else from the kind.

func invalid(format string, args ...any) *errs.Error {
	return errs.Newf(errs.Invalid, csc.CodeInvalidRequest, format, args...)
}

func internal(err error) *errs.Error {
	return &errs.Error{Kind: errs.Internal, Code: csc.CodeServerError, Detail: "internal error", Err: err}
}

// forms is the one table from an error's kind to the CSC answer: HTTP
// status and the CSC error code used when the error's own is not a CSC
// code. The CSC specification answers most refusals 400 invalid_request.
var forms = map[errs.Kind]form{
	errs.Invalid:            {status: http.StatusBadRequest, code: csc.CodeInvalidRequest},
	errs.OutOfRange:         {status: http.StatusBadRequest, code: csc.CodeInvalidRequest},
	errs.NotFound:           {status: http.StatusBadRequest, code: csc.CodeInvalidRequest},
	errs.FailedPrecondition: {status: http.StatusBadRequest, code: csc.CodeInvalidRequest},
	errs.Gone:               {status: http.StatusBadRequest, code: csc.CodeInvalidRequest},
	errs.Conflict:           {status: http.StatusConflict, code: csc.CodeInvalidRequest},
	errs.TooLarge:           {status: http.StatusRequestEntityTooLarge, code: csc.CodeInvalidRequest},
	errs.TooMany:            {status: http.StatusTooManyRequests, code: csc.CodeInvalidRequest},
	errs.Unauthenticated:    {status: http.StatusUnauthorized, code: csc.CodeInvalidToken},
	errs.Denied:             {status: http.StatusForbidden, code: csc.CodeAccessDenied},
	errs.Unprocessable:      {status: http.StatusForbidden, code: csc.CodeAccessDenied},
	errs.Unavailable:        {status: http.StatusServiceUnavailable, code: csc.CodeUnavailable},
	errs.Timeout:            {status: http.StatusServiceUnavailable, code: csc.CodeUnavailable},
	errs.Canceled:           {status: http.StatusServiceUnavailable, code: csc.CodeUnavailable},
	errs.Internal:           {status: http.StatusInternalServerError, code: csc.CodeServerError},
}

// form is one CSC error answer. Answers about HTTP itself (a method or
// route that does not exist, a body that is not JSON) are forms made
// here; everything else comes from an *errs.Error through forms.
type form struct {
	status     int
	code, desc string
	retryAfter time.Duration
}

func (f form) Error() string { return f.code + ": " + f.desc }

// formOf is the CSC answer to err.
func formOf(err error) form {
	var f form
	if errors.As(err, &f) {
		return f
	}
	e := errs.As(err)
	if e == nil {
		var pr *policy.Refusal
		if errors.As(err, &pr) {
			e = &errs.Error{Kind: errs.Denied, Code: pr.Rule, Detail: pr.Reason}
		} else {
			e = internal(err)
		}
	}
	f, ok := forms[e.Kind]
	if !ok {
		f = forms[errs.Internal]
	}
	if slices.Contains(csc.Codes, e.Code) || slices.Contains(oauth.Codes, e.Code) {
		f.code = e.Code
	}
	f.desc, f.retryAfter = e.Detail, e.RetryAfter
	if e.Kind == errs.Internal {
		f.desc = "internal error" // the cause stays in our log
	}
	if f.retryAfter <= 0 && (e.Kind == errs.TooMany || e.Kind == errs.Unavailable) {
		f.retryAfter = time.Second
	}
	return f
}

func (f form) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if f.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="csc"`)
	}
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.retryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(f.status)
	json.NewEncoder(w).Encode(map[string]string{"error": f.code, "error_description": f.desc})
}

// writeForm answers a request about HTTP itself in CSC form.
func writeForm(w http.ResponseWriter, status int, code, desc string) {
	form{status: status, code: code, desc: desc}.write(w)
}
