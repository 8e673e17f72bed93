package cschttp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/errs"
)

// maxForm bounds an OAuth request body: a pushed request with
// authorization_details of the most digests fits well within it.
const maxForm = 1 << 20

// RegisterOAuth mounts the OAuth 2.0 authorisation server of the CSC
// API at Prefix+"oauth2/...": authorize (GET, the browser), and
// pushed_authorize, token and revoke (POST, form-encoded, the client
// authenticated with HTTP Basic, client_secret_post or its TLS
// certificate).
func RegisterOAuth(mux rest.Router, svc *csc.Service, srv *oauth.Server, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &oauthServer{svc: svc, srv: srv, log: log}
	mux.HandleFunc("GET "+Prefix+"oauth2/authorize", o.authorize)
	mux.Handle("POST "+Prefix+"oauth2/pushed_authorize", o.client("oauth2/pushed_authorize", o.push))
	mux.Handle("POST "+Prefix+"oauth2/token", o.client("oauth2/token", o.token))
	mux.Handle("POST "+Prefix+"oauth2/revoke", o.client("oauth2/revoke", o.revoke))
}

type oauthServer struct {
	svc *csc.Service
	srv *oauth.Server
	log *slog.Logger
}

// authorize sends the browser to the citizen's page; a request it cannot
// take is answered here, never redirected, since its redirect URI is not
// known good.
func (o *oauthServer) authorize(w http.ResponseWriter, r *http.Request) {
	to, err := o.srv.Authorize(r.Context(), r.URL.Query())
	if err != nil {
		f := formOf(err)
		o.svc.CountRequest("oauth2/authorize", f.code)
		o.log.WarnContext(r.Context(), "oauth authorize refused", "code", f.code, "reason", f.desc)
		f.write(w)
		return
	}
	o.svc.CountRequest("oauth2/authorize", "ok")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

type clientHandler func(ctx context.Context, c *oauth.Client, form url.Values) (status int, out any, err error)

// client reads the form, authenticates the client and writes the answer
// or the error in the OAuth form (which is the CSC one).
func (o *oauthServer) client(method string, h clientHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		status, out, err := 0, any(nil), error(nil)
		var form url.Values
		if form, err = readForm(w, r); err == nil {
			var c *oauth.Client
			if c, err = o.srv.Authenticate(ctx, clientAuth(r, form)); err == nil {
				status, out, err = h(ctx, c, form)
			}
		}
		if err != nil {
			f := formOf(err)
			o.svc.CountRequest(method, f.code)
			if f.status >= 500 {
				o.log.ErrorContext(ctx, "oauth request failed", "method", method, "code", f.code, "err", err)
			} else {
				o.log.WarnContext(ctx, "oauth request refused", "method", method, "code", f.code, "reason", f.desc)
			}
			f.write(w)
			return
		}
		o.svc.CountRequest(method, "ok")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if out == nil {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(out)
	})
}

func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, form{status: http.StatusUnsupportedMediaType, code: oauth.CodeInvalidRequest, desc: "the body must be application/x-www-form-urlencoded"}
	}
	if r.ContentLength > maxForm {
		return nil, errs.Newf(errs.TooLarge, oauth.CodeInvalidRequest, "the body is over %d bytes", maxForm)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.Newf(errs.TooLarge, oauth.CodeInvalidRequest, "the body is over %d bytes", maxForm)
		}
		return nil, invalid("the body is not a valid form")
	}
	// Parameters count once (RFC 6749 3.1): a repeated one is refused
	// rather than guessed at.
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalid("parameter %s is repeated", k)
		}
	}
	return r.PostForm, nil
}

// clientAuth takes the client's credentials from HTTP Basic (RFC 6749
// 2.3.1, form-encoded id and secret), the form, or the TLS certificate.
func clientAuth(r *http.Request, form url.Values) oauth.ClientAuth {
	if id, secret, ok := r.BasicAuth(); ok {
		uid, err1 := url.QueryUnescape(id)
		usec, err2 := url.QueryUnescape(secret)
		if err1 == nil && err2 == nil {
			return oauth.ClientAuth{ID: uid, Secret: usec}
		}
	}
	a := oauth.ClientAuth{ID: form.Get("client_id"), Secret: form.Get("client_secret")}
	if a.Secret == "" && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		a.CertSHA256 = sum[:]
	}
	return a
}

func (o *oauthServer) push(ctx context.Context, c *oauth.Client, form url.Values) (int, any, error) {
	out, err := o.srv.Push(ctx, c, form)
	return http.StatusCreated, out, err
}

func (o *oauthServer) token(ctx context.Context, c *oauth.Client, form url.Values) (int, any, error) {
	out, err := o.srv.Exchange(ctx, c, form)
	return http.StatusOK, out, err
}

func (o *oauthServer) revoke(ctx context.Context, c *oauth.Client, form url.Values) (int, any, error) {
	h := form.Get("token_type_hint")
	switch h {
	case "", "access_token", "refresh_token":
	default:
		return 0, nil, errs.New(errs.Invalid, "unsupported_token_type", "token_type_hint must be access_token or refresh_token")
	}
	return http.StatusOK, nil, o.srv.Revoke(ctx, c, form.Get("token"), h)
}
