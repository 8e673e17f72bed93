package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/store"
)

// Ceremony refusals the consent page tells apart.
var (
	ErrUnknownRequest = errs.Sentinel(errs.NotFound, "unknown_request", "the authorisation request does not exist or has expired")
	ErrNotSignedIn    = errs.Sentinel(errs.Unauthenticated, "not_signed_in", "sign in first")
	ErrFinished       = errs.Sentinel(errs.FailedPrecondition, "finished", "the authorisation request is finished")
	ErrBadCredentials = errs.Sentinel(errs.Unauthenticated, "bad_credentials", "wrong DNI/NIE or password")
)

// Digest is one document as the citizen sees it.
type Digest struct {
	Label string
	Hex   string // upper-case hex of the digest
}

// Consent is the consent page's view of a request.
type Consent struct {
	ID            string
	Client        string // the portal's name
	CredentialID  string
	HashName      string // "SHA-256"
	Digests       []Digest
	Status        string
	SignedIn      bool                   // this browser's session is the signed-in one
	Certificate   *csc.ConsentCredential // shown once signed in
	ExpiresAt     time.Time
	NumSignatures int
}

func (s *Server) load(ctx context.Context, id string) (*store.OAuthRequest, error) {
	if id == "" {
		return nil, ErrUnknownRequest
	}
	r, err := s.opt.Store.OAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownRequest
	}
	if err != nil {
		return nil, internal(err)
	}
	if r.Scope != "credential" || (!s.now().Before(r.ExpiresAt) && (r.Status == store.OAuthPushed || r.Status == store.OAuthSignedIn)) {
		return nil, ErrUnknownRequest
	}
	return r, nil
}

func (s *Server) signedIn(r *store.OAuthRequest, session string) bool {
	return session != "" && len(r.SessionHash) > 0 && subtle.ConstantTimeCompare(hashOf("session", r.ID, session), r.SessionHash) == 1
}

// View returns the request as the page shows it to this browser.
func (s *Server) View(ctx context.Context, id, session string) (*Consent, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := s.opt.Clients.Portal(ctx, r.ClientID)
	if err != nil {
		return nil, internal(err)
	}
	v := &Consent{ID: r.ID, Client: c.Name, CredentialID: r.CredentialID, HashName: csc.HashName(r.HashAlgo), Status: r.Status,
		ExpiresAt: r.ExpiresAt, NumSignatures: r.NumSignatures, SignedIn: s.signedIn(r, session)}
	for _, d := range r.Digests {
		v.Digests = append(v.Digests, Digest{Label: d.Label, Hex: Hex(d.Hash)})
	}
	if v.SignedIn {
		if v.Certificate, err = s.opt.CSC.CheckCredential(ctx, r.CredentialID, ""); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// SignIn checks the citizen's DNI/NIE and password; the citizen must own
// the credential and may sign with it. The SMS code goes out at once. It
// returns the page's session token.
func (s *Server) SignIn(ctx context.Context, id, citizenID, password string) (string, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return "", err
	}
	if r.Status != store.OAuthPushed && r.Status != store.OAuthSignedIn {
		return "", ErrFinished
	}
	nid, err := registry.NormalizeID("citizen_id", citizenID)
	if err != nil {
		return "", ErrBadCredentials
	}
	// The owner is checked before the password, so that a mistyped
	// DNI/NIE never counts as a wrong password against someone else.
	if _, err := s.opt.CSC.CheckCredential(ctx, r.CredentialID, nid); err != nil {
		return "", err
	}
	if _, err := s.opt.Passwords.Authenticate(ctx, nid, password); err != nil {
		switch {
		case errors.Is(err, registry.ErrBadCredentials), errors.Is(err, registry.ErrInvalid):
			return "", ErrBadCredentials
		}
		return "", err // locked, throttled (with Retry-After) or unavailable, as the registry says
	}
	tok, err := randomToken()
	if err != nil {
		return "", internal(err)
	}
	r.Status, r.CitizenID, r.SessionHash, r.UpdatedAt = store.OAuthSignedIn, nid, hashOf("session", r.ID, tok), s.now().UTC()
	if err := s.opt.Store.UpdateOAuthRequest(ctx, r); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", errs.New(errs.Conflict, "busy", "the request changed meanwhile; try again")
		}
		return "", internal(err)
	}
	if err := s.opt.CSC.ConsentSendOTP(ctx, csc.Caller{ID: r.ClientID, Name: s.clientName(ctx, r.ClientID)}, r.CredentialID, nid); err != nil {
		// Signed in all the same: the page offers to send it again.
		return tok, err
	}
	s.log.InfoContext(ctx, "oauth consent: signed in, code sent", "request", r.ID, "client", r.ClientID)
	return tok, nil
}

func (s *Server) clientName(ctx context.Context, id string) string {
	if p, err := s.opt.Clients.Portal(ctx, id); err == nil {
		return p.Name
	}
	return id
}

// signedInRequest loads a request the session signed in to.
func (s *Server) signedInRequest(ctx context.Context, id, session string) (*store.OAuthRequest, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != store.OAuthSignedIn {
		if r.Status == store.OAuthPushed {
			return nil, ErrNotSignedIn
		}
		return nil, ErrFinished
	}
	if !s.signedIn(r, session) {
		return nil, ErrNotSignedIn
	}
	return r, nil
}

// SendCode sends the SMS code again, within the resend rules.
func (s *Server) SendCode(ctx context.Context, id, session string) error {
	r, err := s.signedInRequest(ctx, id, session)
	if err != nil {
		return err
	}
	return s.opt.CSC.ConsentSendOTP(ctx, csc.Caller{ID: r.ClientID, Name: s.clientName(ctx, r.ClientID)}, r.CredentialID, r.CitizenID)
}

// Approve checks the SMS code for exactly the request's digests and
// returns where the browser goes: the client's redirect URI with the
// authorisation code.
func (s *Server) Approve(ctx context.Context, id, session, otp string) (string, error) {
	r, err := s.signedInRequest(ctx, id, session)
	if err != nil {
		return "", err
	}
	digests := make([][]byte, len(r.Digests))
	for i, d := range r.Digests {
		digests[i] = d.Hash
	}
	if err := s.opt.CSC.ConsentVerifyOTP(ctx, csc.Caller{ID: r.ClientID}, r.CredentialID, r.CitizenID, r.HashAlgo, strings.TrimSpace(otp), digests); err != nil {
		return "", err
	}
	secret, err := randomToken()
	if err != nil {
		return "", internal(err)
	}
	now := s.now().UTC()
	r.Status, r.CodeHash, r.ExpiresAt, r.UpdatedAt = store.OAuthApproved, hashOf("code", r.ID, secret), now.Add(s.opt.CodeTTL), now
	if err := s.opt.Store.UpdateOAuthRequest(ctx, r); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", ErrFinished
		}
		return "", internal(err)
	}
	s.log.InfoContext(ctx, "oauth consent: approved", "request", r.ID, "client", r.ClientID, "digests", len(digests))
	return redirect(r.RedirectURI, url.Values{"code": {r.ID + "." + secret}}, r.State), nil
}

// Reject ends the request and returns the client's redirect URI with
// error=access_denied.
func (s *Server) Reject(ctx context.Context, id, session string) (string, error) {
	r, err := s.signedInRequest(ctx, id, session)
	if err != nil {
		return "", err
	}
	r.Status, r.UpdatedAt = store.OAuthRejected, s.now().UTC()
	if err := s.opt.Store.UpdateOAuthRequest(ctx, r); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", ErrFinished
		}
		return "", internal(err)
	}
	s.log.InfoContext(ctx, "oauth consent: rejected", "request", r.ID, "client", r.ClientID)
	return redirect(r.RedirectURI, url.Values{"error": {CodeAccessDenied}, "error_description": {"the citizen did not authorise the signature"}}, r.State), nil
}

func redirect(uri string, v url.Values, state string) string {
	if state != "" {
		v.Set("state", state)
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + v.Encode()
}

// Token is the token endpoint's answer (RFC 6749 5.1, CSC v2.2 8.3.3).
type Token struct {
	AccessToken          string          `json:"access_token"`
	TokenType            string          `json:"token_type"`
	ExpiresIn            int             `json:"expires_in"`
	Scope                string          `json:"scope,omitempty"`
	RefreshToken         string          `json:"refresh_token,omitempty"`
	CredentialID         string          `json:"credentialID,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
}

// Exchange exchanges an authorisation code (grant_type
// authorization_code) for the access token of credential scope.
func (s *Server) Exchange(ctx context.Context, c *Client, q url.Values) (*Token, error) {
	switch gt := q.Get("grant_type"); gt {
	case "authorization_code":
	case "client_credentials":
		return s.serviceToken(ctx, c, q)
	case "refresh_token":
		return s.refreshToken(ctx, c, q)
	case "":
		return nil, invalid("missing parameter grant_type")
	default:
		return nil, fail(errs.Invalid, CodeUnsupportedGrantType, "grant_type %q is not offered; use authorization_code, client_credentials or refresh_token", gt)
	}
	code := q.Get("code")
	id, secret, ok := strings.Cut(code, ".")
	if code == "" || !ok {
		return nil, badGrant("missing or malformed code")
	}
	r, err := s.opt.Store.OAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badGrant("the code is unknown or expired")
	}
	if err != nil {
		return nil, internal(err)
	}
	if len(r.CodeHash) == 0 || subtle.ConstantTimeCompare(hashOf("code", r.ID, secret), r.CodeHash) != 1 {
		return nil, badGrant("the code is unknown or expired")
	}
	switch {
	case r.ClientID != c.ID:
		return nil, badGrant("the code was issued to another client")
	case r.Status == store.OAuthExchanged:
		return nil, badGrant("the code was used already")
	case r.Status != store.OAuthApproved || !s.now().Before(r.ExpiresAt):
		return nil, badGrant("the code has expired")
	case q.Get("redirect_uri") != r.RedirectURI:
		return nil, badGrant("redirect_uri is not the one of the authorisation request")
	}
	verifier := q.Get("code_verifier")
	if verifier == "" {
		return nil, badGrant("missing code_verifier: PKCE is required")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(r.CodeChallenge)) != 1 {
		return nil, badGrant("code_verifier does not match the code_challenge")
	}
	// Exchanged once: of two racing exchanges, one updates the version.
	r.Status, r.UpdatedAt = store.OAuthExchanged, s.now().UTC()
	if err := s.opt.Store.UpdateOAuthRequest(ctx, r); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, badGrant("the code was used already")
		}
		return nil, internal(err)
	}
	digests := make([][]byte, len(r.Digests))
	for i, d := range r.Digests {
		digests[i] = d.Hash
	}
	a, err := s.opt.CSC.IssueSAD(ctx, csc.Caller{ID: c.ID, Name: c.Name}, r.CredentialID, r.CitizenID, r.HashAlgo, digests)
	if err != nil {
		return nil, err
	}
	t := &Token{AccessToken: a.SAD, TokenType: "Bearer", ExpiresIn: a.ExpiresIn, CredentialID: r.CredentialID}
	if r.Details != "" {
		t.AuthorizationDetails = json.RawMessage(r.Details)
	} else {
		t.Scope = "credential"
	}
	s.log.InfoContext(ctx, "oauth code exchanged", "client", c.ID, "credential", r.CredentialID)
	return t, nil
}

// Revoke ends a token of the client (RFC 7009): a service-scope access
// token, a refresh token with its grant, or a credential-scope token (a
// SAD); unknown tokens are revoked already.
func (s *Server) Revoke(ctx context.Context, c *Client, token, hint string) error {
	if token == "" {
		return invalid("missing parameter token")
	}
	if err := s.revokeService(ctx, c.ID, token, hint); err != nil {
		return err
	}
	if hint == "refresh_token" {
		return nil
	}
	return s.opt.CSC.RevokeToken(ctx, csc.Caller{ID: c.ID}, token)
}

// serviceID is how a service-scope token is kept: its hash.
func serviceID(token string) string {
	return "svc-" + Hex(hashOf("service", "", token))
}

// serviceToken answers client_credentials with a service-scope token:
// the client's own standing, as with its API key, for the methods that
// need no citizen's authorisation (credentials/list and info).
func (s *Server) serviceToken(ctx context.Context, c *Client, q url.Values) (*Token, error) {
	if sc := q.Get("scope"); sc != "" && sc != "service" {
		return nil, fail(errs.Invalid, CodeInvalidScope, "client_credentials gives scope service only; credentials need the citizen (authorization_code)")
	}
	t, err := s.issueService(ctx, c, "", time.Time{})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "oauth service token issued", "client", c.ID)
	return t, nil
}

// serviceClient is the client a live service-scope token belongs to.
func (s *Server) serviceClient(ctx context.Context, tok string) (string, bool) {
	r, err := s.opt.Store.OAuthRequest(ctx, serviceID(tok))
	if err != nil || r.Status != store.OAuthServiceToken || !s.now().Before(r.ExpiresAt) {
		return "", false
	}
	// Revoking a refresh token ends its grant's access tokens too.
	if live, err := s.liveGrant(ctx, r.State); err != nil || !live {
		return "", false
	}
	return r.ClientID, true
}
