package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/store"
)

// OAuth 2.0 error codes (RFC 6749 5.2, RFC 9396 5).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeUnsupportedResponse  = "unsupported_response_type"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidDetails       = "invalid_authorization_details"
	CodeAccessDenied         = "access_denied"
)

// Codes lists the OAuth error codes, which the CSC edge sends as they are.
var Codes = []string{CodeInvalidRequest, CodeInvalidClient, CodeInvalidGrant, CodeUnauthorizedClient, CodeUnsupportedGrantType,
	CodeUnsupportedResponse, CodeInvalidScope, CodeInvalidDetails, CodeAccessDenied, "unsupported_token_type"}

// RequestURIPrefix starts every request_uri of a pushed request.
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// Defaults of Options.
const (
	DefaultRequestTTL = 10 * time.Minute // from the pushed request to approval
	DefaultCodeTTL    = time.Minute      // from approval to the exchange
	DefaultServiceTTL = 10 * time.Minute // a service-scope token
)

// Clients finds portals; any store.Store is one.
type Clients interface {
	Portal(ctx context.Context, id string) (*store.Portal, error)
}

// Passwords checks a citizen's permanent password; *registry.Service is
// one.
type Passwords interface {
	Authenticate(ctx context.Context, id, password string) (*store.Citizen, error)
}

// Options configures a Server. Store, Clients, Passwords, CSC and
// ConsentURL are required.
type Options struct {
	Store     store.OAuthStore
	Clients   Clients
	Passwords Passwords
	CSC       *csc.Service
	// ConsentURL is where the citizen's page for request {id} is:
	// ConsentURL + id.
	ConsentURL string
	RequestTTL time.Duration
	CodeTTL    time.Duration
	// ServiceTTL is how long a service-scope token (client_credentials)
	// lives.
	ServiceTTL time.Duration
	// RefreshTTL is how long a service-scope grant (its refresh tokens)
	// lives; default DefaultRefreshTTL.
	RefreshTTL time.Duration
	Log        *slog.Logger
	Clock      func() time.Time
}

// Server is the authorisation server.
type Server struct {
	opt Options
	log *slog.Logger
	now func() time.Time
}

// New returns a Server.
func New(opt Options) (*Server, error) {
	if opt.Store == nil || opt.Clients == nil || opt.Passwords == nil || opt.CSC == nil || opt.ConsentURL == "" {
		return nil, errors.New("oauth: store, clients, passwords, the CSC service and the consent URL are required")
	}
	if opt.RequestTTL <= 0 {
		opt.RequestTTL = DefaultRequestTTL
	}
	if opt.CodeTTL <= 0 {
		opt.CodeTTL = DefaultCodeTTL
	}
	if opt.ServiceTTL <= 0 {
		opt.ServiceTTL = DefaultServiceTTL
	}
	if opt.RefreshTTL <= 0 {
		opt.RefreshTTL = DefaultRefreshTTL
	}
	s := &Server{opt: opt, log: opt.Log, now: opt.Clock}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	opt.CSC.SetServiceTokens(s.serviceClient)
	opt.CSC.SetTokenRevoker(s.revokeService)
	return s, nil
}

func fail(kind errs.Kind, code, format string, args ...any) *errs.Error {
	return errs.Newf(kind, code, format, args...)
}

func invalid(format string, args ...any) *errs.Error {
	return fail(errs.Invalid, CodeInvalidRequest, format, args...)
}

func badGrant(format string, args ...any) *errs.Error {
	return fail(errs.Invalid, CodeInvalidGrant, format, args...)
}

func internal(err error) *errs.Error {
	return &errs.Error{Kind: errs.Internal, Code: "server_error", Detail: "internal error", Err: err}
}

// Client is an authenticated (or, at the authorisation endpoint, named)
// client.
type Client struct {
	ID, Name string
	portal   *store.Portal
}

// ClientAuth is what a request carries to authenticate its client.
type ClientAuth struct {
	ID     string // client_id (Basic user or form)
	Secret string // client_secret (Basic password or form); "" for mTLS
	// CertSHA256 is the SHA-256 of the TLS client certificate the TLS
	// layer verified, nil if none.
	CertSHA256 []byte
}

// Authenticate checks a confidential client's credentials.
func (s *Server) Authenticate(ctx context.Context, a ClientAuth) (*Client, error) {
	refused := fail(errs.Unauthenticated, CodeInvalidClient, "client authentication failed")
	if a.ID == "" {
		return nil, fail(errs.Unauthenticated, CodeInvalidClient, "client authentication required: HTTP Basic, client_secret_post or the client's TLS certificate")
	}
	p, err := s.opt.Clients.Portal(ctx, a.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refused
	}
	if err != nil {
		return nil, internal(err)
	}
	switch {
	case a.Secret != "":
		sum := sha256.Sum256([]byte(a.Secret))
		if len(p.APIKeyHash) == 0 || subtle.ConstantTimeCompare(sum[:], p.APIKeyHash) != 1 {
			return nil, refused
		}
	case a.CertSHA256 != nil:
		if len(p.CertSHA256) == 0 || subtle.ConstantTimeCompare(a.CertSHA256, p.CertSHA256) != 1 {
			return nil, refused
		}
	default:
		return nil, refused
	}
	if p.Status != store.PortalActive {
		return nil, fail(errs.Unauthenticated, CodeInvalidClient, "the client is disabled")
	}
	return &Client{ID: p.ID, Name: p.Name, portal: p}, nil
}

// client finds a client named at the authorisation endpoint, where it
// does not authenticate.
func (s *Server) client(ctx context.Context, id string) (*Client, error) {
	if id == "" {
		return nil, invalid("missing parameter client_id")
	}
	p, err := s.opt.Clients.Portal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(errs.Invalid, CodeInvalidClient, "unknown client_id")
	}
	if err != nil {
		return nil, internal(err)
	}
	if p.Status != store.PortalActive {
		return nil, fail(errs.Invalid, CodeInvalidClient, "the client is disabled")
	}
	return &Client{ID: p.ID, Name: p.Name, portal: p}, nil
}

// detail is one RFC 9396 authorization_details entry of the CSC
// "credential" type.
type detail struct {
	Type            string   `json:"type"`
	CredentialID    string   `json:"credentialID"`
	HashAlgorithm   string   `json:"hashAlgorithmOID"`
	NumSignatures   *int     `json:"numSignatures"`
	Locations       []string `json:"locations"`
	DocumentDigests []struct {
		Hash  string `json:"hash"`
		Label string `json:"label"`
	} `json:"documentDigests"`
}

// request builds a request from the authorisation parameters, checking
// every rule; it is stored by the caller.
func (s *Server) request(ctx context.Context, c *Client, q url.Values) (*store.OAuthRequest, error) {
	if q.Get("response_type") != "code" {
		return nil, fail(errs.Invalid, CodeUnsupportedResponse, "response_type must be code")
	}
	if id := q.Get("client_id"); id != "" && id != c.ID {
		return nil, invalid("client_id is not the authenticated client")
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		return nil, invalid("missing parameter redirect_uri")
	}
	if !slices.Contains(c.portal.RedirectURLs, redirect) {
		return nil, invalid("redirect_uri is not one the client registered (compared exactly)")
	}
	challenge := q.Get("code_challenge")
	switch {
	case challenge == "":
		return nil, invalid("missing parameter code_challenge: PKCE (RFC 7636) with S256 is required")
	case q.Get("code_challenge_method") != "S256":
		return nil, invalid("code_challenge_method must be S256")
	case len(challenge) != 43:
		return nil, invalid("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	now := s.now().UTC()
	id := make([]byte, 24)
	if _, err := rand.Read(id); err != nil {
		return nil, internal(err)
	}
	r := &store.OAuthRequest{ID: base64.RawURLEncoding.EncodeToString(id), ClientID: c.ID, RedirectURI: redirect, State: q.Get("state"),
		CodeChallenge: challenge, Scope: "credential", Status: store.OAuthPushed,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.opt.RequestTTL)}
	raw, scope := q.Get("authorization_details"), q.Get("scope")
	switch {
	case raw != "" && scope != "":
		return nil, invalid("give either authorization_details or scope=credential, not both")
	case raw != "":
		if err := s.details(r, raw); err != nil {
			return nil, err
		}
	case scope == "credential":
		if err := s.scopeCredential(r, q); err != nil {
			return nil, err
		}
	case scope == "":
		return nil, fail(errs.Invalid, CodeInvalidScope, "missing scope or authorization_details: this server authorises credentials (scope=credential or a \"credential\" authorization_details entry)")
	default:
		return nil, fail(errs.Invalid, CodeInvalidScope, "scope %q is not offered; use credential", scope)
	}
	if n := len(r.Digests); n > s.opt.CSC.MaxSignatures() {
		return nil, fail(errs.Invalid, CodeInvalidDetails, "%d digests is over the limit of %d", n, s.opt.CSC.MaxSignatures())
	}
	if _, err := s.opt.CSC.CheckCredential(ctx, r.CredentialID, ""); err != nil {
		return nil, fail(errs.Invalid, CodeInvalidDetails, "unknown credentialID")
	}
	return r, nil
}

func (s *Server) details(r *store.OAuthRequest, raw string) error {
	var ds []detail
	if err := json.Unmarshal([]byte(raw), &ds); err != nil {
		return fail(errs.Invalid, CodeInvalidDetails, "authorization_details is not a JSON array of objects")
	}
	if len(ds) != 1 || ds[0].Type != "credential" {
		return fail(errs.Invalid, CodeInvalidDetails, "authorization_details must hold exactly one entry of type \"credential\"")
	}
	d := ds[0]
	if d.CredentialID == "" {
		return fail(errs.Invalid, CodeInvalidDetails, "the credential entry needs credentialID")
	}
	if csc.HashName(d.HashAlgorithm) == "" {
		return fail(errs.Invalid, CodeInvalidDetails, "hashAlgorithmOID must be the OID of SHA-256, SHA-384 or SHA-512")
	}
	if len(d.DocumentDigests) == 0 {
		return fail(errs.Invalid, CodeInvalidDetails, "documentDigests is required: the token is bound to the exact digests")
	}
	if d.NumSignatures != nil && *d.NumSignatures != len(d.DocumentDigests) {
		return fail(errs.Invalid, CodeInvalidDetails, "numSignatures %d does not match the %d documentDigests", *d.NumSignatures, len(d.DocumentDigests))
	}
	r.CredentialID, r.HashAlgo, r.NumSignatures, r.Details = d.CredentialID, d.HashAlgorithm, len(d.DocumentDigests), raw
	for i, dd := range d.DocumentDigests {
		h, err := csc.ParseDigest(dd.Hash, d.HashAlgorithm)
		if err != nil {
			return fail(errs.Invalid, CodeInvalidDetails, "documentDigests[%d].hash: %s", i, errs.As(err).Detail)
		}
		label := strings.TrimSpace(dd.Label)
		if label == "" {
			label = fmt.Sprintf("Documento %d", i+1)
		}
		if len(label) > 200 {
			return fail(errs.Invalid, CodeInvalidDetails, "documentDigests[%d].label is over 200 characters", i)
		}
		r.Digests = append(r.Digests, store.OAuthDigest{Hash: h, Label: label})
	}
	return s.distinct(r)
}

// scopeCredential reads the CSC scope=credential form: credentialID,
// numSignatures, hashes (comma-separated) and hashAlgorithmOID.
func (s *Server) scopeCredential(r *store.OAuthRequest, q url.Values) error {
	r.CredentialID, r.HashAlgo = q.Get("credentialID"), q.Get("hashAlgorithmOID")
	if r.CredentialID == "" {
		return invalid("scope=credential needs credentialID")
	}
	if csc.HashName(r.HashAlgo) == "" {
		return invalid("scope=credential needs hashAlgorithmOID: the OID of SHA-256, SHA-384 or SHA-512")
	}
	hashes := strings.Split(q.Get("hashes"), ",")
	if q.Get("hashes") == "" {
		return invalid("scope=credential needs hashes: the token is bound to the exact digests")
	}
	n, err := strconv.Atoi(q.Get("numSignatures"))
	if err != nil || n != len(hashes) {
		return invalid("numSignatures must be the number of hashes (%d)", len(hashes))
	}
	r.NumSignatures = n
	for i, b := range hashes {
		h, err := csc.ParseDigest(strings.TrimSpace(b), r.HashAlgo)
		if err != nil {
			return invalid("hashes[%d]: %s", i, errs.As(err).Detail)
		}
		r.Digests = append(r.Digests, store.OAuthDigest{Hash: h, Label: fmt.Sprintf("Documento %d", i+1)})
	}
	return s.distinct(r)
}

func (s *Server) distinct(r *store.OAuthRequest) error {
	seen := map[string]bool{}
	for i, d := range r.Digests {
		if seen[string(d.Hash)] {
			return fail(errs.Invalid, CodeInvalidDetails, "digest %d repeats an earlier one", i)
		}
		seen[string(d.Hash)] = true
	}
	return nil
}

// PushResult is the pushed request's answer (RFC 9126 2.2).
type PushResult struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int    `json:"expires_in"`
}

// Push stores an authenticated client's authorisation request.
func (s *Server) Push(ctx context.Context, c *Client, q url.Values) (*PushResult, error) {
	if q.Has("request_uri") {
		return nil, invalid("request_uri may not be pushed")
	}
	r, err := s.request(ctx, c, q)
	if err != nil {
		return nil, err
	}
	if err := s.opt.Store.CreateOAuthRequest(ctx, r); err != nil {
		return nil, internal(err)
	}
	s.log.InfoContext(ctx, "oauth request pushed", "client", c.ID, "credential", r.CredentialID, "digests", len(r.Digests))
	return &PushResult{RequestURI: RequestURIPrefix + r.ID, ExpiresIn: int(s.opt.RequestTTL / time.Second)}, nil
}

// pushedParams are the parameters of a pushed request that an
// authorisation request with its request_uri may repeat, but not change.
var pushedParams = []string{"redirect_uri", "scope", "authorization_details", "code_challenge", "code_challenge_method", "state",
	"response_type", "credentialID", "numSignatures", "hashAlgorithmOID"}

// Authorize takes the front-channel authorisation request, pushed
// (client_id and request_uri) or whole, and returns the URL of the
// citizen's page.
func (s *Server) Authorize(ctx context.Context, q url.Values) (string, error) {
	c, err := s.client(ctx, q.Get("client_id"))
	if err != nil {
		return "", err
	}
	ru := q.Get("request_uri")
	if ru == "" {
		r, err := s.request(ctx, c, q)
		if err != nil {
			return "", err
		}
		if err := s.opt.Store.CreateOAuthRequest(ctx, r); err != nil {
			return "", internal(err)
		}
		return s.opt.ConsentURL + r.ID, nil
	}
	id, ok := strings.CutPrefix(ru, RequestURIPrefix)
	if !ok {
		return "", invalid("request_uri is not one this server issued")
	}
	r, err := s.opt.Store.OAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.ClientID != c.ID) {
		return "", invalid("request_uri is unknown, expired or of another client")
	}
	if err != nil {
		return "", internal(err)
	}
	if r.Status != store.OAuthPushed || !s.now().Before(r.ExpiresAt) {
		return "", invalid("request_uri was used already or has expired; push the request again")
	}
	// RFC 9126 4: the pushed parameters are the request. One repeated
	// here with another value means someone changed it on the way.
	pushed := s.pushedValues(r)
	for _, p := range pushedParams {
		if q.Has(p) && q.Get(p) != pushed.Get(p) && pushed.Has(p) {
			return "", fail(errs.Invalid, CodeInvalidRequest, "%s differs from the pushed request", p)
		}
		if q.Has(p) && !pushed.Has(p) && p != "response_type" {
			return "", fail(errs.Invalid, CodeInvalidRequest, "%s was not in the pushed request", p)
		}
	}
	return s.opt.ConsentURL + r.ID, nil
}

// pushedValues rebuilds the parameters a stored request was made from,
// for comparison.
func (s *Server) pushedValues(r *store.OAuthRequest) url.Values {
	v := url.Values{"redirect_uri": {r.RedirectURI}, "code_challenge": {r.CodeChallenge}, "code_challenge_method": {"S256"},
		"response_type": {"code"}}
	if r.State != "" {
		v.Set("state", r.State)
	}
	if r.Details != "" {
		v.Set("authorization_details", r.Details)
	} else {
		v.Set("scope", "credential")
		v.Set("credentialID", r.CredentialID)
		v.Set("hashAlgorithmOID", r.HashAlgo)
		v.Set("numSignatures", strconv.Itoa(r.NumSignatures))
	}
	return v
}

func hashOf(kind, id, secret string) []byte {
	sum := sha256.Sum256([]byte("firma-oauth-" + kind + "\x00" + id + "\x00" + secret))
	return sum[:]
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Hex is a digest as the consent page shows it.
func Hex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// Run deletes requests that expired more than an hour ago, every
// interval until ctx ends; the hour keeps a late code answered "expired"
// rather than "unknown".
func (s *Server) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.opt.Store.DeleteExpiredOAuthRequests(ctx, s.now().Add(-time.Hour)); err != nil {
				s.log.WarnContext(ctx, "oauth: purge expired requests", "err", err)
			} else if n > 0 {
				s.log.DebugContext(ctx, "oauth: purged expired requests", "count", n)
			}
		}
	}
}
