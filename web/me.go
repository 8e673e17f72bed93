package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/store"
)

// Citizens checks a citizen's permanent password; *registry.Service is one.
type Citizens interface {
	Authenticate(ctx context.Context, id, password string) (*store.Citizen, error)
}

// AuditLog is the part of the audit log the citizen's own page reads;
// *audit.Log is one.
type AuditLog interface {
	Query(ctx context.Context, f audit.Filter) (*audit.Page, error)
}

// PortalNames looks up a portal's name for display; store.Store is one.
type PortalNames interface {
	Portal(ctx context.Context, id string) (*store.Portal, error)
}

var (
	_ Citizens = (*registry.Service)(nil)
	_ AuditLog = (*audit.Log)(nil)
)

// MePath is the citizen's own page: every use of their key.
const MePath = "/me"

const (
	meCookieName = "firma-me"
	// meTTL bounds a sign-in to the page: it only reads, so a short
	// session is no burden, and a forgotten tab stops showing the record.
	meTTL = 15 * time.Minute
	// meCSRFID keys the page's form tokens apart from any transaction's.
	meCSRFID = "\x00me"
	mePage   = 20
)

// meData is what me.html renders.
type meData struct {
	L, Other  Lang
	SwitchURL string
	Static    string
	CSRF      string
	Error     string
	Citizen   string // the DNI/NIE typed, to refill the form
	SignedIn  bool
	Rows      []meRow
	Next      string
	First     bool
}

type meRow struct {
	Time      string
	Portal    string
	Documents []meDoc
	OK        bool
	Reason    string
}

type meDoc struct {
	Name string
	Code string
}

// meEnabled reports whether the page has what it needs to run.
func (h *Handler) meEnabled() bool { return h.opt.Citizens != nil && h.opt.Audit != nil }

func (h *Handler) initMe() error {
	key := h.opt.SessionKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("web: session key: %w", err)
		}
	}
	if len(key) < 32 {
		return errors.New("web: session key must be at least 32 bytes")
	}
	h.meKey = key
	t, err := template.New("me.html").ParseFS(templateFS, "templates/me.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	h.meTmpl = t
	h.mux.HandleFunc("GET "+MePath, h.meGet)
	h.mux.HandleFunc("POST "+MePath+"/login", h.mePost("me_login", h.meLogin))
	h.mux.HandleFunc("POST "+MePath+"/logout", h.mePost("me_logout", h.meLogout))
	return nil
}

// meSession signs "citizen.expiry.issued" with the server key (expiry
// in Unix seconds, issued in Unix nanoseconds). The value holds no
// secret: only the HMAC makes it worth anything.
func (h *Handler) meSession(citizen string, issued, exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(citizen)) + "." + strconv.FormatInt(exp.Unix(), 10) +
		"." + strconv.FormatInt(issued.UnixNano(), 10)
	return payload + "." + h.meMAC(payload)
}

// MeSessionLifetime is how long a /me sign-in lasts, and so how long its
// sign-out cell (me-signed-out:<citizen> in the attempt store) matters:
// the store's sweeper must keep such cells at least this long.
const MeSessionLifetime = meTTL

// meSignedOutScope is the store cell that keeps when the citizen last
// signed out of /me (in its last-failure time; the count and lock are
// unused): every session issued before it is revoked. One cell per
// citizen, so signing out ends the sessions of every browser, and the
// cookie stays stateless otherwise.
func meSignedOutScope(citizen string) string { return "me-signed-out:" + citizen }

// meRevoked reports whether the citizen signed out after issued.
func (h *Handler) meRevoked(ctx context.Context, citizen string, issued time.Time) (bool, error) {
	if h.opt.Sessions == nil {
		h.meMu.Lock()
		defer h.meMu.Unlock()
		out, ok := h.meOut[citizen]
		return ok && !issued.After(out), nil
	}
	_, out, _, err := h.opt.Sessions.Attempts(ctx, meSignedOutScope(citizen))
	if err != nil {
		return false, err
	}
	return !out.IsZero() && !issued.After(out), nil
}

// meRevoke revokes the citizen's sessions issued until now. The record
// outlives them by meTTL at most: a sign-out older than that revokes
// nothing still alive, so the next sign-in purges it.
func (h *Handler) meRevoke(ctx context.Context, citizen string, now time.Time) error {
	if h.opt.Sessions == nil {
		h.meMu.Lock()
		defer h.meMu.Unlock()
		for c, out := range h.meOut {
			if now.Sub(out) > meTTL {
				delete(h.meOut, c)
			}
		}
		h.meOut[citizen] = now
		return nil
	}
	return h.opt.Sessions.UpdateAttempts(ctx, meSignedOutScope(citizen), func(int, time.Time, time.Time) (int, time.Time, time.Time) {
		return 0, now, time.Time{}
	})
}

// mePurge forgets a sign-out that no live session predates.
func (h *Handler) mePurge(ctx context.Context, citizen string, now time.Time) error {
	if h.opt.Sessions == nil {
		return nil
	}
	_, out, _, err := h.opt.Sessions.Attempts(ctx, meSignedOutScope(citizen))
	if err != nil || out.IsZero() || now.Sub(out) <= meTTL {
		return err
	}
	return h.opt.Sessions.ResetAttempts(ctx, meSignedOutScope(citizen))
}

func (h *Handler) meMAC(payload string) string {
	m := hmac.New(sha256.New, h.meKey)
	m.Write([]byte("firma-me-v1\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// meCitizen returns the citizen a valid, unexpired, unrevoked session
// cookie names, or "". The error is the store's, when it cannot say
// whether the session was revoked.
func (h *Handler) meCitizen(r *http.Request) (string, error) {
	v := cookieValue(r, h.cookieName(meCookieName))
	i := strings.LastIndexByte(v, '.')
	if v == "" || i < 0 {
		return "", nil
	}
	payload, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(h.meMAC(payload))) {
		return "", nil
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 {
		return "", nil
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !time.Now().Before(time.Unix(exp, 0)) {
		return "", nil
	}
	iat, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", nil
	}
	id, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(id) == 0 {
		return "", nil
	}
	revoked, err := h.meRevoked(r.Context(), string(id), time.Unix(0, iat))
	if err != nil {
		return "", err
	}
	if revoked {
		return "", nil
	}
	return string(id), nil
}

func (h *Handler) newMe(w http.ResponseWriter, r *http.Request) *meData {
	l, _ := pickLang(r)
	d := &meData{L: l, Other: l.other(), Static: strings.TrimSuffix(staticPath, "/"), SwitchURL: MePath + "?lang=" + string(l.other())}
	secret := h.csrfSecret(w, r)
	d.CSRF = csrfToken(secret, meCSRFID, cookieValue(r, h.cookieName(meCookieName)))
	return d
}

func (h *Handler) meGet(w http.ResponseWriter, r *http.Request) {
	if l, switched := pickLang(r); switched {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: h.opt.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		h.headers(w)
		http.Redirect(w, r, MePath, http.StatusSeeOther)
		return
	}
	d := h.newMe(w, r)
	citizen, err := h.meCitizen(r)
	if err != nil {
		h.pages.WithLabelValues("me_view", "internal").Inc()
		h.log.ErrorContext(r.Context(), "citizen page: session check", "err", err)
		d.Error = d.L.T("err.unavailable")
		h.renderMe(w, r, http.StatusServiceUnavailable, d)
		return
	}
	if citizen == "" {
		if cookieValue(r, h.cookieName(meCookieName)) != "" {
			// Forged or expired: drop it and ask to sign in again.
			h.clearCookie(w, h.cookieName(meCookieName))
			d.CSRF = csrfToken(cookieValue(r, h.cookieName(csrfCookieName)), meCSRFID, "")
		}
		h.pages.WithLabelValues("me_view", "signed_out").Inc()
		h.renderMe(w, r, http.StatusOK, d)
		return
	}
	var cursor int64
	if c := r.URL.Query().Get("c"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			h.pages.WithLabelValues("me_view", "bad_cursor").Inc()
			d.SignedIn, d.Error = true, d.L.T("err.invalid_request")
			h.renderMe(w, r, http.StatusBadRequest, d)
			return
		}
		cursor = n
	}
	d.SignedIn, d.First = true, cursor == 0
	p, err := h.opt.Audit.Query(r.Context(), audit.Filter{Citizen: citizen, Events: []audit.Event{audit.KeyUsed}, Cursor: cursor, Limit: mePage})
	if err != nil {
		h.pages.WithLabelValues("me_view", "internal").Inc()
		h.log.ErrorContext(r.Context(), "citizen page: audit query", "err", err)
		d.Error = d.L.T("err.unavailable")
		h.renderMe(w, r, http.StatusServiceUnavailable, d)
		return
	}
	names := map[string]string{}
	for _, rec := range p.Records {
		// The store filters by citizen; checked again so a store bug can
		// never show one citizen another's signatures.
		if rec.Citizen != citizen {
			continue
		}
		d.Rows = append(d.Rows, h.meRow(r.Context(), rec, names))
	}
	if p.Next > 0 {
		d.Next = MePath + "?c=" + strconv.FormatInt(p.Next, 10)
	}
	h.pages.WithLabelValues("me_view", "ok").Inc()
	h.renderMe(w, r, http.StatusOK, d)
}

func (h *Handler) meRow(ctx context.Context, rec *audit.Record, names map[string]string) meRow {
	row := meRow{Time: rec.Time.In(h.loc).Format("02/01/2006 15:04:05 MST"), Portal: rec.Portal, OK: rec.Outcome == audit.Success, Reason: rec.Reason}
	if n, ok := names[rec.Portal]; ok {
		row.Portal = n
	} else if h.opt.Portals != nil && rec.Portal != "" {
		if p, err := h.opt.Portals.Portal(ctx, rec.Portal); err == nil && p.Name != "" {
			row.Portal = p.Name
		}
		names[rec.Portal] = row.Portal
	}
	for _, doc := range rec.Documents {
		md := meDoc{Name: doc.Name, Code: doc.Digest}
		if b, err := hex.DecodeString(doc.Digest); err == nil {
			md.Code = policy.ShortCode(b)
		}
		row.Documents = append(row.Documents, md)
	}
	return row
}

// mePost wraps a form handler of the page with the origin and CSRF checks.
func (h *Handler) mePost(action string, fn func(w http.ResponseWriter, r *http.Request, d *meData)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		parseErr := r.ParseForm()
		session := cookieValue(r, h.cookieName(meCookieName))
		secret := cookieValue(r, h.cookieName(csrfCookieName))
		d := h.newMe(w, r)
		switch {
		case parseErr != nil:
			h.pages.WithLabelValues(action, "bad_form").Inc()
			d.Error = d.L.T("err.invalid_request")
			h.renderMe(w, r, http.StatusBadRequest, d)
			return
		case !h.sameOrigin(r):
			h.pages.WithLabelValues(action, "cross_origin").Inc()
			h.log.WarnContext(r.Context(), "citizen page: cross-origin post refused", "action", action, "origin", r.Header.Get("Origin"))
			d.Error = d.L.T("err.csrf")
			h.renderMe(w, r, http.StatusForbidden, d)
			return
		case !checkCSRF(r, secret, meCSRFID, session):
			h.pages.WithLabelValues(action, "csrf").Inc()
			h.log.WarnContext(r.Context(), "citizen page: csrf token refused", "action", action)
			d.Error = d.L.T("err.csrf")
			h.renderMe(w, r, http.StatusForbidden, d)
			return
		}
		fn(w, r, d)
	}
}

func (h *Handler) meLogin(w http.ResponseWriter, r *http.Request, d *meData) {
	citizen := strings.TrimSpace(r.PostFormValue("citizen"))
	password := r.PostFormValue("password")
	d.Citizen = citizen
	refuse := func(status int, outcome, key string) {
		h.pages.WithLabelValues("me_login", outcome).Inc()
		d.Error = d.L.T(key)
		h.renderMe(w, r, status, d)
	}
	switch {
	case citizen == "":
		refuse(http.StatusBadRequest, "missing_id", "err.missing_id")
		return
	case password == "":
		refuse(http.StatusBadRequest, "missing_password", "err.missing_password")
		return
	}
	id, err := registry.NormalizeID("citizen", citizen)
	if err != nil {
		refuse(http.StatusUnauthorized, "bad_credentials", "err.bad_credentials")
		return
	}
	if h.overRate(w, r, h.opt.LoginRate, "me_login") {
		d.Error = d.L.T("err.rate_limited")
		h.renderMe(w, r, http.StatusTooManyRequests, d)
		return
	}
	c, err := h.opt.Citizens.Authenticate(registry.WithClient(r.Context(), clientAddr(r)), id, password)
	if err != nil {
		code, sh := show(err)
		switch {
		case sh.status >= 500:
			h.log.ErrorContext(r.Context(), "citizen page: sign-in failed", "code", code, "err", err)
		default:
			// The same for every DNI/NIE, registered or not.
			h.log.WarnContext(r.Context(), "citizen page: sign-in refused", "code", code)
		}
		if sh.status == http.StatusServiceUnavailable || sh.status == http.StatusTooManyRequests {
			// A busy server or a throttled sign-in says when to come back.
			if ra := limit.RetryAfterSeconds(err); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
		}
		if code == "" || sh == internal {
			// A store or HSM failure: the citizen can only retry.
			code, sh = "unavailable", byKind[errs.Unavailable]
		}
		refuse(sh.status, code, sh.key)
		return
	}
	now := time.Now()
	if err := h.mePurge(r.Context(), c.ID, now); err != nil {
		h.log.WarnContext(r.Context(), "citizen page: old sign-out not purged", "err", err)
	}
	h.pages.WithLabelValues("me_login", "ok").Inc()
	h.setCookie(w, h.cookieName(meCookieName), h.meSession(c.ID, now, now.Add(meTTL)), now.Add(meTTL))
	h.headers(w)
	http.Redirect(w, r, MePath, http.StatusSeeOther)
}

// meLogout ends the sign-in on the server too: the cookie is stateless,
// so a copy of it (a shared computer, a stolen cookie) would otherwise
// stay good for the rest of its 15 minutes.
func (h *Handler) meLogout(w http.ResponseWriter, r *http.Request, d *meData) {
	citizen, err := h.meCitizen(r)
	if err == nil && citizen != "" {
		err = h.meRevoke(r.Context(), citizen, time.Now())
	}
	if err != nil {
		h.pages.WithLabelValues("me_logout", "internal").Inc()
		h.log.ErrorContext(r.Context(), "citizen page: sign-out not recorded", "err", err)
		d.SignedIn, d.Error = true, d.L.T("err.unavailable")
		h.renderMe(w, r, http.StatusServiceUnavailable, d)
		return
	}
	h.pages.WithLabelValues("me_logout", "ok").Inc()
	h.clearCookie(w, h.cookieName(meCookieName))
	h.headers(w)
	http.Redirect(w, r, MePath, http.StatusSeeOther)
}

func (h *Handler) renderMe(w http.ResponseWriter, r *http.Request, status int, d *meData) {
	var buf bytes.Buffer
	if err := h.meTmpl.Execute(&buf, d); err != nil {
		h.log.ErrorContext(r.Context(), "citizen page: render", "err", err)
		h.headers(w)
		internalError(w)
		return
	}
	h.headers(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(d.L))
	w.Header().Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// meMessages are the page's texts, merged into messages at start-up.
var meMessages = map[Lang]map[string]string{
	Spanish: {
		"me.title":      "Uso de su clave de firma",
		"me.link":       "Ver el uso de su clave de firma",
		"me.intro":      "Identifíquese con su DNI o NIE y su contraseña de Cl@ve Permanente para ver cada firma hecha con su clave.",
		"me.signin":     "Acceder",
		"me.signout":    "Salir",
		"me.when":       "Fecha (hora peninsular)",
		"me.portal":     "Servicio",
		"me.docs":       "Documentos",
		"me.outcome":    "Resultado",
		"me.ok":         "Firmado",
		"me.failed":     "No firmado",
		"me.none":       "Su clave no se ha usado todavía.",
		"me.next":       "Ver más",
		"me.first":      "Volver al principio",
		"me.doc_count":  "%d documento(s)",
		"err.try_later": "No se ha podido comprobar su DNI/NIE y contraseña. Espere unos minutos y vuelva a intentarlo.",
	},
	English: {
		"me.title":      "Use of your signing key",
		"me.link":       "See the use of your signing key",
		"me.intro":      "Sign in with your DNI or NIE and your Cl@ve Permanente password to see every signature made with your key.",
		"me.signin":     "Sign in",
		"me.signout":    "Sign out",
		"me.when":       "Date (Madrid time)",
		"me.portal":     "Service",
		"me.docs":       "Documents",
		"me.outcome":    "Outcome",
		"me.ok":         "Signed",
		"me.failed":     "Not signed",
		"me.none":       "Your key has not been used yet.",
		"me.next":       "See more",
		"me.first":      "Back to the start",
		"me.doc_count":  "%d document(s)",
		"err.try_later": "Your DNI/NIE and password could not be checked. Wait a few minutes and try again.",
	},
}

func init() {
	for l, m := range meMessages {
		for k, v := range m {
			messages[l][k] = v
		}
	}
}
