package oauth

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/store"
)

// Service-scope tokens. client_credentials issues an access token and a
// refresh token of one grant. The refresh token rotates: each use gives a
// new pair and spends the old one, and a spent one shown again (stolen
// and used by two parties) revokes the whole grant (RFC 9700 4.14.2).
// The grant ends RefreshTTL after it began however often it is refreshed,
// and revoking a refresh token revokes every token of its grant (CSC
// v2.2 11.3). Every token is stored only as its hash.
//
// RFC 6749 4.4.3 says a client_credentials answer should not carry a
// refresh token; CSC clients expect one for the service scope (auth/login
// with rememberMe answers one), and the client that holds it can mint
// access tokens only as it could with its own credentials, so it is
// given.

// DefaultRefreshTTL is how long a service-scope grant lives.
const DefaultRefreshTTL = 12 * time.Hour

func refreshID(token string) string { return "rt-" + Hex(hashOf("refresh", "", token)) }

func grantID(id string) string { return "grant-" + id }

// liveGrant tells whether the grant id is live; true when id is "" (tokens
// issued before grants existed stand alone).
func (s *Server) liveGrant(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return true, nil
	}
	g, err := s.opt.Store.OAuthRequest(ctx, grantID(id))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return g.Status == store.OAuthServiceToken && s.now().Before(g.ExpiresAt), nil
}

// issueService stores a new access token and refresh token of grant
// (created when "") and returns them.
func (s *Server) issueService(ctx context.Context, c *Client, grant string, grantEnds time.Time) (*Token, error) {
	now := s.now().UTC()
	if grant == "" {
		id, err := randomToken()
		if err != nil {
			return nil, internal(err)
		}
		grant, grantEnds = id, now.Add(s.opt.RefreshTTL)
		g := &store.OAuthRequest{ID: grantID(grant), ClientID: c.ID, Scope: "service", Status: store.OAuthServiceToken, State: grant,
			CreatedAt: now, UpdatedAt: now, ExpiresAt: grantEnds}
		if err := s.opt.Store.CreateOAuthRequest(ctx, g); err != nil {
			return nil, internal(err)
		}
	}
	access, err := randomToken()
	if err != nil {
		return nil, internal(err)
	}
	refresh, err := randomToken()
	if err != nil {
		return nil, internal(err)
	}
	accessEnds := now.Add(s.opt.ServiceTTL)
	if grantEnds.Before(accessEnds) {
		accessEnds = grantEnds
	}
	for _, r := range []*store.OAuthRequest{
		{ID: serviceID(access), ClientID: c.ID, Scope: "service", Status: store.OAuthServiceToken, State: grant,
			CreatedAt: now, UpdatedAt: now, ExpiresAt: accessEnds},
		{ID: refreshID(refresh), ClientID: c.ID, Scope: "service", Status: store.OAuthRefresh, State: grant,
			CreatedAt: now, UpdatedAt: now, ExpiresAt: grantEnds},
	} {
		if err := s.opt.Store.CreateOAuthRequest(ctx, r); err != nil {
			return nil, internal(err)
		}
	}
	return &Token{AccessToken: access, TokenType: "Bearer", ExpiresIn: max(1, int(accessEnds.Sub(now)/time.Second)), Scope: "service",
		RefreshToken: refresh}, nil
}

// refreshToken answers grant_type refresh_token.
func (s *Server) refreshToken(ctx context.Context, c *Client, q url.Values) (*Token, error) {
	if sc := q.Get("scope"); sc != "" && sc != "service" {
		return nil, fail(errs.Invalid, CodeInvalidScope, "a refresh token gives scope service only")
	}
	tok := q.Get("refresh_token")
	if tok == "" {
		return nil, invalid("missing parameter refresh_token")
	}
	gone := badGrant("the refresh token is unknown, expired or revoked")
	r, err := s.opt.Store.OAuthRequest(ctx, refreshID(tok))
	if errors.Is(err, store.ErrNotFound) {
		return nil, gone
	}
	if err != nil {
		return nil, internal(err)
	}
	if r.ClientID != c.ID || r.Scope != "service" {
		return nil, gone
	}
	g, err := s.opt.Store.OAuthRequest(ctx, grantID(r.State))
	if errors.Is(err, store.ErrNotFound) {
		return nil, gone
	}
	if err != nil {
		return nil, internal(err)
	}
	if g.Status != store.OAuthServiceToken || !s.now().Before(g.ExpiresAt) {
		return nil, gone
	}
	if r.Status == store.OAuthRotated {
		return nil, s.replayed(ctx, c, g)
	}
	if r.Status != store.OAuthRefresh || !s.now().Before(r.ExpiresAt) {
		return nil, gone
	}
	r.Status, r.UpdatedAt = store.OAuthRotated, s.now().UTC()
	if err := s.opt.Store.UpdateOAuthRequest(ctx, r); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Two uses at once: one of them is not the client's.
			return nil, s.replayed(ctx, c, g)
		}
		return nil, internal(err)
	}
	t, err := s.issueService(ctx, c, r.State, g.ExpiresAt)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "oauth service token refreshed", "client", c.ID)
	return t, nil
}

// replayed revokes the grant of a refresh token used twice.
func (s *Server) replayed(ctx context.Context, c *Client, g *store.OAuthRequest) error {
	if err := s.endGrant(ctx, g); err != nil {
		return internal(err)
	}
	s.log.WarnContext(ctx, "oauth refresh token replayed: grant revoked", "client", c.ID)
	return badGrant("the refresh token was used already: every token of its grant is revoked")
}

func (s *Server) endGrant(ctx context.Context, g *store.OAuthRequest) error {
	for {
		if g.Status == store.OAuthRevoked {
			return nil
		}
		g.Status, g.UpdatedAt = store.OAuthRevoked, s.now().UTC()
		err := s.opt.Store.UpdateOAuthRequest(ctx, g)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		if g, err = s.opt.Store.OAuthRequest(ctx, g.ID); err != nil {
			return err
		}
	}
}

// revokeService ends a client's service-scope token: an access token
// alone, or a refresh token with its whole grant. Unknown tokens and
// those of other clients are left as they are (RFC 7009 2.2: the answer
// is the same).
func (s *Server) revokeService(ctx context.Context, client, token, hint string) error {
	if hint != "refresh_token" {
		r, err := s.opt.Store.OAuthRequest(ctx, serviceID(token))
		switch {
		case err == nil:
			if r.ClientID != client || r.Status != store.OAuthServiceToken {
				return nil
			}
			r.Status, r.UpdatedAt = store.OAuthRevoked, s.now().UTC()
			if err := s.opt.Store.UpdateOAuthRequest(ctx, r); err != nil && !errors.Is(err, store.ErrConflict) {
				return internal(err)
			}
			s.log.InfoContext(ctx, "oauth service token revoked", "client", client)
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return internal(err)
		}
	}
	if hint == "access_token" {
		return nil
	}
	r, err := s.opt.Store.OAuthRequest(ctx, refreshID(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return internal(err)
	}
	if r.ClientID != client {
		return nil
	}
	g, err := s.opt.Store.OAuthRequest(ctx, grantID(r.State))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = s.endGrant(ctx, g)
	}
	if err != nil {
		return internal(err)
	}
	s.log.InfoContext(ctx, "oauth refresh token revoked with its grant", "client", client)
	return nil
}
