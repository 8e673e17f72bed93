package web

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/registry"
)

// Consents is the ceremony of the CSC API's OAuth 2.0 authorisation
// server (csc/oauth): the citizen authorises a portal's CSC client to
// sign exact digests with their credential, on this page rather than the
// client's. *oauth.Server is one.
type Consents interface {
	View(ctx context.Context, id, session string) (*oauth.Consent, error)
	SignIn(ctx context.Context, id, citizenID, password string) (string, error)
	SendCode(ctx context.Context, id, session string) error
	Approve(ctx context.Context, id, session, otp string) (string, error)
	Reject(ctx context.Context, id, session string) (string, error)
}

var _ Consents = (*oauth.Server)(nil)

// ConsentPath is where the consent page of request {id} is served.
const ConsentPath = PathPrefix + "consent/"

//go:embed templates/consent.html
var consentHTML string

// consentText is the consent page's own wording; the sign-in, code and
// certificate labels are the approval page's (messages).
var consentText = map[Lang]map[string]string{
	Spanish: {
		"title":      "Autorizar firmas",
		"asks":       "%s pide firmar con su certificado en la nube, desde su aplicación de firma, estos documentos:",
		"digest":     "Huella (%s)",
		"login.help": "Identifíquese con su DNI o NIE y su contraseña de Cl@ve Permanente. Le enviaremos un código por SMS.",
		"otp.help":   "Le hemos enviado un código por SMS. Escríbalo aquí solo si reconoce la petición: autoriza a %s a firmar exactamente estos documentos, una vez cada uno.",
		"sent":       "Le hemos enviado el código por SMS.",
		"unknown":    "La solicitud de autorización no existe o ha caducado. Vuelva a la aplicación que se la pidió.",
		"finished":   "Esta solicitud de autorización ya ha terminado.",
		"not_signed": "Identifíquese primero.",
		"bad_login":  "DNI/NIE o contraseña incorrectos.",
		"denied":     "No puede autorizar esta firma: %s",
		"otp_wrong":  "Código incorrecto o caducado: %s",
		"busy":       "El servicio no está disponible ahora mismo. Inténtelo de nuevo en unos minutos.",
		"throttled":  "Demasiados intentos. Espere un poco e inténtelo de nuevo.",
		"csrf":       "La página ha caducado. Recárguela e inténtelo de nuevo.",
	},
	English: {
		"title":      "Authorise signatures",
		"asks":       "%s asks to sign with your cloud certificate, from its signing application, these documents:",
		"digest":     "Digest (%s)",
		"login.help": "Sign in with your DNI or NIE and your Cl@ve Permanente password. We will send you a code by SMS.",
		"otp.help":   "We have sent you a code by SMS. Type it here only if you recognise the request: it lets %s sign exactly these documents, each once.",
		"sent":       "We have sent you the code by SMS.",
		"unknown":    "The authorisation request does not exist or has expired. Go back to the application that asked you.",
		"finished":   "This authorisation request has already ended.",
		"not_signed": "Sign in first.",
		"bad_login":  "Wrong DNI/NIE or password.",
		"denied":     "You cannot authorise this signature: %s",
		"otp_wrong":  "Wrong or expired code: %s",
		"busy":       "The service is not available right now. Try again in a few minutes.",
		"throttled":  "Too many attempts. Wait a little and try again.",
		"csrf":       "The page has expired. Reload it and try again.",
	},
}

// consentPage is what consent.html renders.
type consentPage struct {
	L, Other  Lang
	SwitchURL string
	Static    string
	ID        string
	View      *oauth.Consent
	CSRF      string
	Error     string
	Notice    string
	Citizen   string
}

// C is the consent page's own text in the page's language.
func (p *consentPage) C(key string, args ...any) string {
	m, ok := consentText[p.L][key]
	if !ok {
		m = consentText[Spanish][key]
	}
	if len(args) == 0 {
		return m
	}
	return fmt.Sprintf(m, args...)
}

// Action is the URL a form of the page posts to.
func (p *consentPage) Action(step string) string {
	return ConsentPath + url.PathEscape(p.ID) + "/" + step
}

// CommonName is the approval page's.
func (p *consentPage) CommonName(dn string) string { return (&page{}).CommonName(dn) }

// initConsent mounts the consent page when Options.Consents is set.
func (h *Handler) initConsent() error {
	t, err := template.New("consent").Parse(consentHTML)
	if err != nil {
		return fmt.Errorf("web: consent template: %w", err)
	}
	h.consentTmpl = t
	h.mux.HandleFunc("GET "+ConsentPath+"{id}", h.consentGet)
	h.mux.HandleFunc("POST "+ConsentPath+"{id}/login", h.consentPost("consent_login", h.consentLogin))
	h.mux.HandleFunc("POST "+ConsentPath+"{id}/send", h.consentPost("consent_send", h.consentSend))
	h.mux.HandleFunc("POST "+ConsentPath+"{id}/approve", h.consentPost("consent_approve", h.consentApprove))
	h.mux.HandleFunc("POST "+ConsentPath+"{id}/reject", h.consentPost("consent_reject", h.consentReject))
	return nil
}

// consentKey keeps the consent page's cookies and CSRF tokens apart from
// a transaction's of the same ID.
func consentKey(id string) string { return "consent:" + id }

func (h *Handler) newConsentPage(w http.ResponseWriter, r *http.Request, id string) *consentPage {
	l, _ := pickLang(r)
	p := &consentPage{L: l, Other: l.other(), ID: id, Static: strings.TrimSuffix(staticPath, "/")}
	p.SwitchURL = ConsentPath + url.PathEscape(id) + "?lang=" + string(p.Other)
	secret := h.csrfSecret(w, r)
	p.CSRF = csrfToken(secret, consentKey(id), cookieValue(r, h.sessionCookie(consentKey(id))))
	return p
}

func (h *Handler) consentRender(w http.ResponseWriter, r *http.Request, status int, p *consentPage) {
	var buf bytes.Buffer
	if err := h.consentTmpl.Execute(&buf, p); err != nil {
		h.log.ErrorContext(r.Context(), "consent page: render", "err", err)
		h.headers(w)
		internalError(w)
		return
	}
	h.headers(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(p.L))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Handler) consentGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if l, switched := pickLang(r); switched {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: h.opt.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		h.headers(w)
		http.Redirect(w, r, ConsentPath+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	p := h.newConsentPage(w, r, id)
	if r.URL.Query().Get("n") == "sent" {
		p.Notice = p.C("sent")
	}
	h.consentShow(w, r, p, http.StatusOK, "view", nil)
}

// consentShow renders the request's current view with err's message, if
// any.
func (h *Handler) consentShow(w http.ResponseWriter, r *http.Request, p *consentPage, status int, action string, err error) {
	id := p.ID
	if err != nil {
		status, p.Error = h.consentError(w, p, err)
	}
	v, verr := h.opt.Consents.View(r.Context(), id, cookieValue(r, h.sessionCookie(consentKey(id))))
	if verr != nil {
		s, msg := h.consentError(w, p, verr)
		if err == nil {
			status, p.Error = s, msg
		}
	} else {
		p.View = v
	}
	outcome := "ok"
	if err != nil {
		outcome = "refused"
	}
	h.pages.WithLabelValues(action, outcome).Inc()
	h.consentRender(w, r, status, p)
}

// consentError is the status and message for a refusal.
func (h *Handler) consentError(w http.ResponseWriter, p *consentPage, err error) (int, string) {
	e := errs.As(err)
	switch {
	case errors.Is(err, oauth.ErrUnknownRequest):
		return http.StatusNotFound, p.C("unknown")
	case errors.Is(err, oauth.ErrFinished):
		return http.StatusConflict, p.C("finished")
	case errors.Is(err, oauth.ErrNotSignedIn):
		return http.StatusForbidden, p.C("not_signed")
	case errors.Is(err, oauth.ErrBadCredentials), errors.Is(err, registry.ErrBadCredentials):
		return http.StatusUnauthorized, p.C("bad_login")
	case errors.Is(err, registry.ErrThrottled), e != nil && e.Kind == errs.TooMany:
		if e != nil && e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
		}
		if e != nil && e.Code != registry.ErrThrottled.Code {
			return http.StatusTooManyRequests, p.C("otp_wrong", e.Detail)
		}
		return http.StatusTooManyRequests, p.C("throttled")
	case errors.Is(err, registry.ErrLocked) && e != nil:
		return http.StatusForbidden, p.C("denied", e.Detail)
	case errors.Is(err, csc.ErrInvalidOTP):
		return http.StatusBadRequest, p.C("otp_wrong", e.Detail)
	case e != nil && e.Kind == errs.Denied:
		return http.StatusForbidden, p.C("denied", e.Detail)
	case e != nil && e.Kind == errs.Invalid:
		return http.StatusBadRequest, p.C("otp_wrong", e.Detail)
	}
	h.log.Error("consent page: refused", "err", err)
	return http.StatusServiceUnavailable, p.C("busy")
}

// consentPost checks origin and CSRF token as the approval page does.
func (h *Handler) consentPost(action string, fn func(w http.ResponseWriter, r *http.Request, p *consentPage, session string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		parseErr := r.ParseForm()
		session := cookieValue(r, h.sessionCookie(consentKey(id)))
		secret := cookieValue(r, h.cookieName(csrfCookieName))
		p := h.newConsentPage(w, r, id)
		switch {
		case parseErr != nil:
			h.consentShow(w, r, p, http.StatusBadRequest, action, errs.New(errs.Invalid, "bad_form", "bad form"))
			return
		case !h.sameOrigin(r), !checkCSRF(r, secret, consentKey(id), session):
			h.log.WarnContext(r.Context(), "consent page: cross-origin or csrf post refused", "action", action)
			p.Error = p.C("csrf")
			h.consentShow(w, r, p, http.StatusForbidden, action, nil)
			return
		}
		fn(w, r, p, session)
	}
}

func (h *Handler) consentLogin(w http.ResponseWriter, r *http.Request, p *consentPage, _ string) {
	citizen := strings.TrimSpace(r.PostFormValue("citizen"))
	p.Citizen = citizen
	if h.overRate(w, r, h.opt.LoginRate, "consent_login") {
		p.Error = p.C("throttled")
		h.consentShow(w, r, p, http.StatusTooManyRequests, "consent_login", nil)
		return
	}
	tok, err := h.opt.Consents.SignIn(registry.WithClient(r.Context(), clientAddr(r)), p.ID, citizen, r.PostFormValue("password"))
	if tok != "" {
		// Signed in, even if the SMS failed: the page offers to send again.
		h.setCookie(w, h.sessionCookie(consentKey(p.ID)), tok, time.Time{})
		r.AddCookie(&http.Cookie{Name: h.sessionCookie(consentKey(p.ID)), Value: tok})
		p.CSRF = csrfToken(cookieValue(r, h.cookieName(csrfCookieName)), consentKey(p.ID), tok)
	}
	if err != nil {
		h.consentShow(w, r, p, http.StatusOK, "consent_login", err)
		return
	}
	h.pages.WithLabelValues("consent_login", "ok").Inc()
	h.headers(w)
	http.Redirect(w, r, ConsentPath+url.PathEscape(p.ID)+"?n=sent", http.StatusSeeOther)
}

func (h *Handler) consentSend(w http.ResponseWriter, r *http.Request, p *consentPage, session string) {
	if h.overRate(w, r, h.opt.SMSRate, "consent_send") {
		p.Error = p.C("throttled")
		h.consentShow(w, r, p, http.StatusTooManyRequests, "consent_send", nil)
		return
	}
	if err := h.opt.Consents.SendCode(r.Context(), p.ID, session); err != nil {
		h.consentShow(w, r, p, http.StatusOK, "consent_send", err)
		return
	}
	h.pages.WithLabelValues("consent_send", "ok").Inc()
	h.headers(w)
	http.Redirect(w, r, ConsentPath+url.PathEscape(p.ID)+"?n=sent", http.StatusSeeOther)
}

func (h *Handler) consentApprove(w http.ResponseWriter, r *http.Request, p *consentPage, session string) {
	to, err := h.opt.Consents.Approve(r.Context(), p.ID, session, r.PostFormValue("otp"))
	if err != nil {
		h.consentShow(w, r, p, http.StatusOK, "consent_approve", err)
		return
	}
	h.consentLeave(w, r, p, "consent_approve", to)
}

func (h *Handler) consentReject(w http.ResponseWriter, r *http.Request, p *consentPage, session string) {
	to, err := h.opt.Consents.Reject(r.Context(), p.ID, session)
	if err != nil {
		h.consentShow(w, r, p, http.StatusOK, "consent_reject", err)
		return
	}
	h.consentLeave(w, r, p, "consent_reject", to)
}

// consentLeave sends the browser back to the client's registered
// redirect URI, which the authorisation server gives, never the request.
func (h *Handler) consentLeave(w http.ResponseWriter, r *http.Request, p *consentPage, action, to string) {
	h.clearCookie(w, h.sessionCookie(consentKey(p.ID)))
	h.pages.WithLabelValues(action, "ok").Inc()
	h.log.InfoContext(r.Context(), "consent page: done", "action", action)
	h.headers(w)
	http.Redirect(w, r, to, http.StatusSeeOther)
}
