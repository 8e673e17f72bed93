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
	"strings"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/store"
)

// maxBody bounds a request body: multisign hashes of SHA-512 in base64
// plus the rest fit well within it.
const maxBody = 1 << 20

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
	mux.Handle("POST "+Prefix+"signatures/signHash", s.authed(portals, "signatures/signHash", s.serveSignHash))
	// Anything else under the prefix, wrong methods included, gets a CSC
	// error rather than the mux's plain-text one.
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(csc.Methods, strings.TrimPrefix(r.URL.Path, Prefix)) {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &csc.Error{Status: http.StatusMethodNotAllowed, Code: csc.CodeInvalidRequest,
				Description: fmt.Sprintf("%s takes POST, not %s", strings.TrimPrefix(r.URL.Path, Prefix), r.Method)})
			return
		}
		writeError(w, &csc.Error{Status: http.StatusNotFound, Code: csc.CodeInvalidRequest,
			Description: fmt.Sprintf("no CSC method %s %s; methods: info, %s (all POST)", r.Method, strings.TrimPrefix(r.URL.Path, Prefix), strings.Join(csc.Methods, ", "))})
	})
}

type handlerFunc func(ctx context.Context, caller csc.Caller, body []byte) (any, error)

// authed authenticates the portal, reads the body and writes the answer
// or the error in CSC form.
func (s *server) authed(portals portal.Authenticator, method string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		caller, err := authenticate(ctx, portals, r)
		if err == nil {
			var body []byte
			if body, err = readBody(w, r); err == nil {
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
		e := asError(err)
		s.svc.CountRequest(method, e.Code)
		switch {
		case e.Status >= 500:
			s.log.ErrorContext(ctx, "csc request failed", "method", method, "portal", caller.ID, "code", e.Code, "err", e.Err)
		default:
			s.log.WarnContext(ctx, "csc request refused", "method", method, "portal", caller.ID, "code", e.Code, "reason", e.Description)
		}
		writeError(w, e)
	})
}

func (s *server) serveInfo(w http.ResponseWriter, r *http.Request) {
	s.svc.CountRequest("info", "ok")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.svc.Info())
}

// authenticate finds the calling portal by bearer API key, else by TLS
// client certificate.
func authenticate(ctx context.Context, portals portal.Authenticator, r *http.Request) (csc.Caller, error) {
	var (
		p   *store.Portal
		err error
	)
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return csc.Caller{}, &csc.Error{Status: http.StatusUnauthorized, Code: csc.CodeInvalidToken, Description: "Authorization must be \"Bearer <portal API key>\""}
		}
		p, err = portals.AuthenticateAPIKey(ctx, strings.TrimSpace(tok))
	} else if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		// Only a certificate the TLS layer verified against the client CAs
		// identifies a portal.
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		p, err = portals.AuthenticateCert(ctx, sum[:])
	} else {
		return csc.Caller{}, &csc.Error{Status: http.StatusUnauthorized, Code: csc.CodeInvalidToken, Description: "missing portal credentials: send the API key as a bearer token or use the portal's client certificate"}
	}
	switch {
	case errors.Is(err, portal.ErrDisabled):
		return csc.Caller{}, &csc.Error{Status: http.StatusForbidden, Code: csc.CodeAccessDenied, Description: "the portal is disabled"}
	case errors.Is(err, portal.ErrUnauthenticated), errors.Is(err, portal.ErrNotFound):
		return csc.Caller{}, &csc.Error{Status: http.StatusUnauthorized, Code: csc.CodeInvalidToken, Description: "portal credentials not recognised"}
	case err != nil:
		return csc.Caller{}, internal(fmt.Errorf("authenticate portal: %w", err))
	}
	return csc.Caller{ID: p.ID, Name: p.Name}, nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &csc.Error{Status: http.StatusUnsupportedMediaType, Code: csc.CodeInvalidRequest, Description: "the body must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &csc.Error{Status: http.StatusRequestEntityTooLarge, Code: csc.CodeInvalidRequest, Description: fmt.Sprintf("the body is over %d bytes", maxBody)}
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
	UserID       string `json:"userID"`
	CredInfo     bool   `json:"credInfo"`
	Certificates string `json:"certificates"`
	CertInfo     bool   `json:"certInfo"`
	AuthInfo     bool   `json:"authInfo"`
	OnlyValid    bool   `json:"onlyValid"`
	MaxResults   int    `json:"maxResults"`
	PageToken    string `json:"pageToken"`
}

func (s *server) serveList(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b listBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return s.svc.List(ctx, c, csc.ListRequest{UserID: b.UserID, CredInfo: b.CredInfo, OnlyValid: b.OnlyValid, MaxResults: b.MaxResults,
		PageToken: b.PageToken, Info: csc.InfoRequest{Certificates: b.Certificates, CertInfo: b.CertInfo, AuthInfo: b.AuthInfo}})
}

type infoBody struct {
	CredentialID string `json:"credentialID"`
	Certificates string `json:"certificates"`
	CertInfo     bool   `json:"certInfo"`
	AuthInfo     bool   `json:"authInfo"`
}

func (s *server) serveCredInfo(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b infoBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return s.svc.CredentialInfo(ctx, c, b.CredentialID, csc.InfoRequest{Certificates: b.Certificates, CertInfo: b.CertInfo, AuthInfo: b.AuthInfo})
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

// The CSC error form: {"error", "error_description"} with the status the
// error carries.

func invalid(format string, args ...any) *csc.Error {
	return &csc.Error{Status: http.StatusBadRequest, Code: csc.CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

func internal(err error) *csc.Error {
	return &csc.Error{Status: http.StatusInternalServerError, Code: csc.CodeServerError, Description: "internal error", Err: err}
}

// asError turns any error into the *csc.Error to send.
func asError(err error) *csc.Error {
	var e *csc.Error
	if errors.As(err, &e) {
		return e
	}
	return internal(err)
}

func writeError(w http.ResponseWriter, e *csc.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="csc"`)
	}
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.Code, "error_description": e.Description})
}
