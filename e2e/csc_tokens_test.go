package e2e_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// TestCSCRefreshTokens: client_credentials gives a service-scope access
// token and a refresh token; the refresh token rotates, a spent one shown
// again revokes its whole grant, another client cannot use it, and the
// grant ends 12 hours after it began however often it is refreshed.
func TestCSCRefreshTokens(t *testing.T) {
	w := newOAuthWorld(t)
	a, b := w.a, w.b
	grant := func(c *cscClient) reply {
		t.Helper()
		r := c.form("token", c.id, c.key, url.Values{"grant_type": {"client_credentials"}, "scope": {"service"}})
		if r.status != 200 || r.str("refresh_token") == "" || r.str("access_token") == "" {
			t.Fatalf("client_credentials: %d %s", r.status, r.raw)
		}
		cscConforms(t, "oauth2_token", r.raw)
		return r
	}
	refresh := func(c *cscClient, rt string) reply {
		t.Helper()
		return c.form("token", c.id, c.key, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	lists := func(at string) bool {
		t.Helper()
		r := a.call("credentials/list", at, map[string]any{"userID": w.citizen})
		if r.status != 200 {
			wantErr(t, "credentials/list", r, 401, "invalid_token")
		}
		return r.status == 200
	}

	g := grant(a)
	r1 := refresh(a, g.str("refresh_token"))
	if r1.status != 200 || r1.str("refresh_token") == g.str("refresh_token") || r1.str("scope") != "service" {
		t.Fatalf("refresh: %d %s", r1.status, r1.raw)
	}
	cscConforms(t, "oauth2_token", r1.raw)
	if !lists(r1.str("access_token")) || !lists(g.str("access_token")) {
		t.Fatal("the refreshed or the first access token does not list")
	}
	wantErr(t, "refresh by another client", refresh(b, r1.str("refresh_token")), 400, "invalid_grant")
	wantErr(t, "refresh for credential scope", a.form("token", a.id, a.key, url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {r1.str("refresh_token")}, "scope": {"credential"}}), 400, "invalid_scope")
	wantErr(t, "refresh without the token", a.form("token", a.id, a.key, url.Values{"grant_type": {"refresh_token"}}), 400, "invalid_request")
	wantErr(t, "an unknown refresh token", refresh(a, "bm90IGEgdG9rZW4"), 400, "invalid_grant")
	// The refused tries above did not spend it.
	r2 := refresh(a, r1.str("refresh_token"))
	if r2.status != 200 {
		t.Fatalf("second refresh: %s", r2.raw)
	}
	// The first refresh token again: replay. Every token of the grant ends.
	wantErr(t, "a rotated refresh token again", refresh(a, g.str("refresh_token")), 400, "invalid_grant")
	wantErr(t, "the latest refresh token after the replay", refresh(a, r2.str("refresh_token")), 400, "invalid_grant")
	for _, at := range []string{g.str("access_token"), r1.str("access_token"), r2.str("access_token")} {
		if lists(at) {
			t.Fatal("an access token of a replayed grant still lists")
		}
	}

	// The grant's life is fixed at the start.
	g = grant(a)
	rt := g.str("refresh_token")
	for range 3 {
		w.clock.Add(3 * time.Hour)
		r := refresh(a, rt)
		if r.status != 200 {
			t.Fatalf("refresh within the grant: %s", r.raw)
		}
		rt = r.str("refresh_token")
	}
	w.clock.Add(3 * time.Hour) // 12 hours after the grant began
	wantErr(t, "refresh past the grant's life", refresh(a, rt), 400, "invalid_grant")
}

// TestCSCAuthRevoke: auth/revoke (CSC v2.2 11.3) with the service-scope
// tokens. An access token ends alone; a refresh token ends with every
// access token of its grant; a token of another client is not touched.
// Answers are 204, refusals in the CSC form.
func TestCSCAuthRevoke(t *testing.T) {
	w := newOAuthWorld(t)
	a, b := w.a, w.b
	info := a.call("info", "", map[string]any{})
	methods, _ := info.body["methods"].([]any)
	for _, m := range []string{"auth/revoke", "credentials/extendTransaction", "credentials/getChallenge", "credentials/authorizeCheck"} {
		if !slices.Contains(methods, any(m)) {
			t.Fatalf("info.methods lacks %s: %s", m, info.raw)
		}
	}
	grant := func(c *cscClient) (string, string) {
		r := c.form("token", c.id, c.key, url.Values{"grant_type": {"client_credentials"}})
		return r.str("access_token"), r.str("refresh_token")
	}
	lists := func(c *cscClient, at string) int {
		return c.call("credentials/list", at, map[string]any{"userID": w.citizen}).status
	}
	revoke := func(c *cscClient, bearer string, body map[string]any) reply {
		t.Helper()
		return c.call("auth/revoke", bearer, body)
	}
	at, rt := grant(a)
	at2 := a.form("token", a.id, a.key, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	rt2 := at2.str("refresh_token")

	// Another client's token: 204, and it still works.
	bat, _ := grant(b)
	if r := revoke(a, at, map[string]any{"token": bat}); r.status != http.StatusNoContent || r.raw != "" {
		t.Fatalf("revoke of another client's token: %d %s", r.status, r.raw)
	}
	if lists(b, bat) != 200 {
		t.Fatal("another client revoked b's token")
	}
	// The access token alone: the refresh token stays.
	if r := revoke(a, at2.str("access_token"), map[string]any{"token": at, "token_type_hint": "access_token"}); r.status != http.StatusNoContent {
		t.Fatalf("revoke access token: %d %s", r.status, r.raw)
	}
	if lists(a, at) != 401 || lists(a, at2.str("access_token")) != 200 {
		t.Fatal("revoking an access token did not end it alone")
	}
	// The refresh token, called with the portal's API key: its grant ends.
	if r := revoke(a, a.key, map[string]any{"token": rt2, "token_type_hint": "refresh_token", "clientData": "x"}); r.status != http.StatusNoContent {
		t.Fatalf("revoke refresh token: %d %s", r.status, r.raw)
	}
	if lists(a, at2.str("access_token")) != 401 {
		t.Fatal("an access token of a revoked grant still lists")
	}
	wantErr(t, "refresh after revoke", a.form("token", a.id, a.key, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}),
		400, "invalid_grant")
	// oauth2/revoke (RFC 7009) takes refresh tokens too.
	_, rt3 := grant(a)
	if r := a.form("revoke", a.id, a.key, url.Values{"token": {rt3}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
		t.Fatalf("oauth2/revoke of a refresh token: %d %s", r.status, r.raw)
	}
	wantErr(t, "refresh after oauth2/revoke", a.form("token", a.id, a.key, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt3}}),
		400, "invalid_grant")
	// Refusals.
	wantErr(t, "auth/revoke without token", revoke(a, a.key, map[string]any{}), 400, "invalid_request")
	wantErr(t, "auth/revoke with a bad hint", revoke(a, a.key, map[string]any{"token": "x", "token_type_hint": "id_token"}), 400, "invalid_request")
	wantErr(t, "auth/revoke without credentials", revoke(a, "", map[string]any{"token": "x"}), 401, "invalid_token")
	wantErr(t, "auth/revoke with a revoked token", revoke(a, at, map[string]any{"token": "x"}), 401, "invalid_token")
}

// TestCSCExtendTransactionOAuth: a credential-scope access token is a SAD:
// credentials/extendTransaction with it as bearer (no SAD parameter)
// gives a new one for the digests not yet signed, usable as bearer.
func TestCSCExtendTransactionOAuth(t *testing.T) {
	w := newOAuthWorld(t)
	c := w.a
	ds := docs("Anexo I.pdf", "Anexo II.pdf")
	verifier, challenge := pkce(t)
	at := c.token(w.approve(t, c, ds, challenge), verifier).str("access_token")
	if r := c.signHash(at, w.cred, ds[0].hash); r.status != 200 {
		t.Fatalf("signHash: %s", r.raw)
	}
	w.clock.Add(4 * time.Minute)
	r := c.call("credentials/extendTransaction", at, map[string]any{"credentialID": w.cred, "hashAlgorithmOID": oidSHA256})
	if r.status != 200 {
		t.Fatalf("extendTransaction: %d %s", r.status, r.raw)
	}
	cscConforms(t, "credentials_extendTransaction", r.raw)
	next := r.str("SAD")
	w.clock.Add(2 * time.Minute) // the first token's five minutes are over
	wantErr(t, "signHash with the first token", c.signHash(at, w.cred, ds[1].hash), 401, "invalid_token")
	if r := c.signHash(next, w.cred, ds[1].hash); r.status != 200 {
		t.Fatalf("signHash with the extended SAD: %s", r.raw)
	}
	wantErr(t, "extend by another client", w.b.call("credentials/extendTransaction", w.b.key, map[string]any{"credentialID": w.cred, "SAD": next}),
		400, "invalid_request")
}
