package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Madrid on hosts without a zoneinfo database

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Transactions is the part of the transaction core the page drives;
// *transaction.Service is one.
type Transactions interface {
	View(ctx context.Context, id string) (*transaction.View, error)
	SessionView(ctx context.Context, id, session string) (*transaction.View, error)
	Authenticate(ctx context.Context, id, citizenID, password string) (*transaction.Session, error)
	SendOTP(ctx context.Context, id, session string) (*transaction.OTPStatus, error)
	Resend(ctx context.Context, id, session string) (*transaction.OTPStatus, error)
	Approve(ctx context.Context, id, session, otp string) (*transaction.View, error)
	Reject(ctx context.Context, id, session string) (*transaction.View, error)
	SessionDocument(ctx context.Context, id, session string, index int) (*transaction.DocumentContent, error)
}

var _ Transactions = (*transaction.Service)(nil)

// Paths the page is served under.
const (
	PathPrefix = "/sign/"
	staticPath = "/sign/assets/"
)

// Options configures the approval page. Transactions is required.
type Options struct {
	Transactions Transactions
	// Secure marks the cookies Secure with the __Host- prefix. Set it
	// whenever citizens reach the page over HTTPS, directly or through a
	// TLS-terminating proxy; leave it off only for plain-HTTP loopback
	// development, where browsers would drop Secure cookies.
	Secure bool
	// BaseURL is the public URL citizens use (as the transaction core's
	// BaseURL); its origin is the one form posts must come from. Empty:
	// the request's own host.
	BaseURL string
	// Location is the time zone times are shown in; default Europe/Madrid.
	Location *time.Location
	// Citizens and Audit enable the citizen's own page at /me, listing
	// every use of their key; Portals, if set, names the portals there.
	Citizens Citizens
	Audit    AuditLog
	Portals  PortalNames
	// SessionKey signs the /me sign-in cookie (32 bytes or more). Nodes
	// behind one balancer need the same key; empty, a random one per
	// process, so a sign-in lasts only as long as the process.
	SessionKey []byte
	// Sessions keeps when each citizen last signed out of /me, so that
	// signing out revokes the stateless cookie on every node sharing the
	// store (any store.Store is one). Nil: kept in this process only.
	Sessions store.AttemptStore
	// LoginRate limits sign-ins (the approval page's and /me's) per
	// client, SMSRate the approval page's code sends and resends; a
	// client over it gets the page with a 429 and Retry-After. Nil: no
	// limit.
	LoginRate *limit.Clients
	SMSRate   *limit.Clients
	// Consents, if set, serves the CSC API's OAuth 2.0 consent page at
	// ConsentPath (consent.go).
	Consents Consents
	// ConfirmFor is how long the confirmation after a signing stays
	// before the browser goes on to the portal; default 6 s.
	ConfirmFor time.Duration
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil registers no metrics
}

// Handler serves the citizen approval page.
type Handler struct {
	opt     Options
	tx      Transactions
	log     *slog.Logger
	tmpl    *template.Template
	static  http.Handler
	origins []string
	loc     *time.Location
	pages   *prometheus.CounterVec
	mux     *http.ServeMux
	meKey   []byte
	meTmpl  *template.Template
	meMu    sync.Mutex
	meOut   map[string]time.Time // sign-outs, without Options.Sessions
	// confirmFor is Options.ConfirmFor, whole seconds, at least 1.
	confirmFor time.Duration

	consentTmpl *template.Template
}

var _ http.Handler = (*Handler)(nil)

// New returns the page handler.
func New(opt Options) (*Handler, error) {
	if opt.Transactions == nil {
		return nil, errors.New("web: a transaction service is required")
	}
	h := &Handler{opt: opt, tx: opt.Transactions, log: opt.Log, loc: opt.Location, meOut: map[string]time.Time{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.confirmFor = max(opt.ConfirmFor.Truncate(time.Second), time.Second)
	if opt.ConfirmFor == 0 {
		h.confirmFor = defaultConfirmFor
	}
	if h.loc == nil {
		loc, err := time.LoadLocation("Europe/Madrid")
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		h.loc = loc
	}
	if opt.BaseURL != "" {
		u, err := url.Parse(opt.BaseURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("web: base URL %q is not an absolute URL", opt.BaseURL)
		}
		h.origins = []string{strings.ToLower(u.Scheme + "://" + u.Host)}
	}
	t, err := template.New("page.html").ParseFS(templateFS, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	h.tmpl = t
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	h.static = http.StripPrefix(staticPath, http.FileServerFS(sub))
	h.pages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "firma_web_requests_total", Help: "Approval page requests, by action and outcome code (\"ok\" when none)."},
		[]string{"action", "outcome"})
	if opt.Registerer != nil {
		if err := opt.Registerer.Register(h.pages); err != nil {
			return nil, fmt.Errorf("web metrics: %w", err)
		}
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET "+staticPath+"{file}", h.serveStatic)
	h.mux.HandleFunc("GET "+PathPrefix+"{id}", h.get)
	h.mux.HandleFunc("GET "+PathPrefix+"{id}/doc/{n}", h.document)
	h.mux.HandleFunc("POST "+PathPrefix+"{id}/login", h.post("login", h.login))
	h.mux.HandleFunc("POST "+PathPrefix+"{id}/send", h.post("send", h.send))
	h.mux.HandleFunc("POST "+PathPrefix+"{id}/resend", h.post("resend", h.resend))
	h.mux.HandleFunc("POST "+PathPrefix+"{id}/approve", h.post("approve", h.approve))
	h.mux.HandleFunc("POST "+PathPrefix+"{id}/reject", h.post("reject", h.reject))
	if h.meEnabled() {
		if err := h.initMe(); err != nil {
			return nil, err
		}
	}
	if opt.Consents != nil {
		if err := h.initConsent(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Register mounts the page on mux under /sign/, and the citizen's own
// page at /me when enabled.
func (h *Handler) Register(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle(PathPrefix, h)
	if h.meEnabled() {
		mux.Handle(MePath, h)
		mux.Handle(MePath+"/", h)
	}
}

// ServeHTTP routes the page's requests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// No such page (or not by this method): said as the page says
		// everything, in the citizen's language, not net/http's English.
		l, _ := pickLang(r)
		p := &page{L: l, Other: l.other(), Static: strings.TrimSuffix(staticPath, "/"), loc: h.loc, Step: "missing", Error: l.T("err.not_found"),
			SwitchURL: "?lang=" + string(l.other())}
		h.pages.WithLabelValues("view", "no_page").Inc()
		h.render(w, r, http.StatusNotFound, p)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// internalError answers when a page cannot be rendered at all: in both
// languages, since there is no page to carry the choice.
func internalError(w http.ResponseWriter) {
	http.Error(w, "Error interno. Inténtelo de nuevo más tarde. / Internal error. Please try again later.", http.StatusInternalServerError)
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.static.ServeHTTP(w, r)
}

// page is what the template renders.
type page struct {
	L, Other  Lang
	SwitchURL string
	Static    string
	ID        string
	View      *transaction.View
	Step      string // login, send, otp, signing, final, missing
	Live      bool
	CSRF      string
	Error     string
	Notice    string
	Final     string
	ReturnURL string
	Citizen   string
	CanReject bool
	Leave     bool
	Refresh   int
	// RefreshURL is where the refresh goes; "" reloads the page.
	RefreshURL string
	// Confirm marks the confirmation after a signing: what was signed,
	// when and with which certificate, then on to the portal.
	Confirm bool
	MeURL   string // the citizen's own page, "" if not served
	loc     *time.Location
}

// Action is the URL a form posts to.
func (p *page) Action(step string) string { return PathPrefix + url.PathEscape(p.ID) + "/" + step }

// Tries says how many OTP tries are left.
func (p *page) Tries(n int) string {
	if n == 1 {
		return p.L.T("otp.tries.one")
	}
	return p.L.T("otp.tries", n)
}

// Clock shows a time of day in the page's zone, named (CET, CEST): the
// citizen may be elsewhere.
func (p *page) Clock(t time.Time) string { return t.In(p.loc).Format("15:04 MST") }

// When shows a date and time in the page's zone, named.
func (p *page) When(t time.Time) string { return t.In(p.loc).Format("02/01/2006 15:04:05 MST") }

// ConfirmSeconds is how long the confirmation stays.
func (p *page) ConfirmSeconds() int { return p.Refresh }

// Date shows a date in the page's zone.
func (p *page) Date(t time.Time) string { return t.In(p.loc).Format("02/01/2006") }

// After reports whether t is still to come.
func (p *page) After(t time.Time) bool { return time.Now().Before(t) }

// Progress is how many documents have an outcome stored (signed or
// failed), and Total how many there are: the signing worker's progress,
// read from the store on each refresh.
func (p *page) Progress() int {
	n := 0
	if p.View != nil {
		for _, d := range p.View.Documents {
			if d.Status != transaction.DocPending {
				n++
			}
		}
	}
	return n
}

// Total is the number of documents.
func (p *page) Total() int {
	if p.View == nil {
		return 0
	}
	return len(p.View.Documents)
}

// ShowDocStatus tells whether per-document outcomes mean anything yet.
func (p *page) ShowDocStatus() bool { return p.View != nil && p.View.State.Final() }

// Size shows a byte count.
func (p *page) Size(n int64) string {
	switch {
	case n < 1024:
		return p.L.T("bytes", strconv.FormatInt(n, 10))
	case n < 1024*1024:
		return p.L.T("kb", p.decimal(float64(n)/1024))
	}
	return p.L.T("mb", p.decimal(float64(n)/(1024*1024)))
}

func (p *page) decimal(f float64) string {
	s := strconv.FormatFloat(f, 'f', 1, 64)
	if p.L == Spanish {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// Format names a signature format.
func (p *page) Format(f signer.Format) string {
	switch strings.ToLower(string(f)) {
	case "cades":
		return "CAdES"
	case "pades":
		return "PAdES"
	case "xades":
		return "XAdES"
	case "asic-s-cades":
		return "ASiC-S (CAdES)"
	case "asic-s-xades":
		return "ASiC-S (XAdES)"
	case "asic-e-xades":
		return "ASiC-E (XAdES)"
	case "raw", "":
		return "PKCS#1 / ECDSA"
	}
	return string(f)
}

// newPage starts a page for the request: language, CSRF secret, and the
// switch link.
func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, id string) *page {
	l, _ := pickLang(r)
	p := &page{L: l, Other: l.other(), ID: id, Static: strings.TrimSuffix(staticPath, "/"), loc: h.loc}
	p.SwitchURL = PathPrefix + url.PathEscape(id) + "?lang=" + string(p.Other)
	if h.meEnabled() {
		p.MeURL = MePath
	}
	secret := h.csrfSecret(w, r)
	p.CSRF = csrfToken(secret, id, cookieValue(r, h.sessionCookie(id)))
	return p
}

// fill sets the step from the transaction's state and whether this
// browser holds its live session (v.SignedIn). Rejecting needs the
// session: the link alone is not the citizen.
func (h *Handler) fill(p *page, v *transaction.View) {
	hasSession := v.SignedIn
	p.View = v
	p.Live = !v.State.Final()
	p.Leave = p.Live
	switch v.State {
	case transaction.StateCreated:
		p.Step = "login"
	case transaction.StateAuthenticated:
		p.Step, p.CanReject = "login", false
		if hasSession {
			p.Step, p.CanReject = "send", true
		}
	case transaction.StateOTPSent:
		p.Step, p.CanReject = "login", false
		if hasSession && v.OTP != nil {
			p.Step, p.CanReject = "otp", true
		}
	case transaction.StateApproved, transaction.StateSigning:
		// A meta refresh, not a script: it works without JavaScript and
		// under the strict CSP. Its target says the browser waited here,
		// so the end sends it on to the portal as the approval did when
		// it signed inline.
		p.Step, p.Refresh, p.Leave = "signing", signingRefresh, false
		p.RefreshURL = PathPrefix + url.PathEscape(p.ID) + "?n=" + waitNotice
	default:
		p.Step, p.Leave = "final", false
		p.ReturnURL = v.ReturnURL
		p.Final = h.finalText(p.L, v)
	}
}

// finalText explains a final state to the citizen.
func (h *Handler) finalText(l Lang, v *transaction.View) string {
	switch v.State {
	case transaction.StateDone:
		return l.T("done", v.PortalName)
	case transaction.StateRejected:
		return l.T("final.rejected")
	case transaction.StateExpired:
		return l.T("final.expired")
	case transaction.StateCancelled:
		return l.T("final.cancelled")
	}
	if v.ErrorCode == transaction.CodeOTPLocked {
		return l.T("final.otp_locked")
	}
	return l.T("final.failed")
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, p *page) {
	var buf bytes.Buffer
	if err := h.tmpl.Execute(&buf, p); err != nil {
		h.log.ErrorContext(r.Context(), "approval page: render", "err", err)
		h.headers(w)
		internalError(w)
		return
	}
	h.headers(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(p.L))
	w.Header().Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// view is the transaction as this browser may see it: whole for the
// signed-in citizen, without the certificate otherwise.
func (h *Handler) view(r *http.Request, id string) (*transaction.View, error) {
	return h.tx.SessionView(r.Context(), id, cookieValue(r, h.sessionCookie(id)))
}

// clientAddr is the address password tries are counted by, per client:
// limit.ClientKey's, the one every limiter uses (the peer, or behind a
// trusted proxy the client it forwarded for).
func clientAddr(r *http.Request) string { return limit.ClientKey(r) }

// flash messages travel in the redirect's query as a key, never as text,
// so a crafted link cannot put words on the page.
var notices = map[string]bool{"sent": true, "resent": true}

// waitNotice marks the progress page's refresh: at the end, the browser
// goes on to the portal's return URL instead of the final page.
const waitNotice = "wait"

// defaultConfirmFor is how long the confirmation stays by default:
// enough to read it, short enough not to be left on it.
const defaultConfirmFor = 6 * time.Second

// signingRefresh is how often, in seconds, the progress page reloads.
const signingRefresh = 2

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if l, switched := pickLang(r); switched {
		// Remember the switch and drop it from the URL.
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: h.opt.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		q := r.URL.Query()
		q.Del("lang")
		target := PathPrefix + url.PathEscape(id)
		if e := q.Encode(); e != "" {
			target += "?" + e
		}
		h.headers(w)
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	p := h.newPage(w, r, id)
	v, err := h.view(r, id)
	if err != nil {
		h.fail(w, r, p, "view", err)
		return
	}
	h.fill(p, v)
	if r.URL.Query().Get("n") == waitNotice && p.Step == "final" && v.ReturnURL != "" && v.State == transaction.StateDone {
		// The signing this browser waited for ended: the confirmation,
		// then on to the portal.
		h.pages.WithLabelValues("view", "signed").Inc()
		h.confirm(w, r, p, v)
		return
	}
	if n := r.URL.Query().Get("n"); notices[n] && p.Step == "otp" {
		p.Notice = p.L.T("notice." + n)
	}
	h.pages.WithLabelValues("view", "ok").Inc()
	h.render(w, r, http.StatusOK, p)
}

// maxForm bounds a posted form; the largest holds a DNI and a password.
const maxForm = 8 << 10

// post wraps a form handler with the origin and CSRF checks.
func (h *Handler) post(action string, fn func(w http.ResponseWriter, r *http.Request, p *page, session string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		parseErr := r.ParseForm()
		session := cookieValue(r, h.sessionCookie(id))
		secret := cookieValue(r, h.cookieName(csrfCookieName))
		p := h.newPage(w, r, id)
		switch {
		case parseErr != nil:
			h.pages.WithLabelValues(action, "bad_form").Inc()
			h.refuse(w, r, p, http.StatusBadRequest, p.L.T("err.invalid_request"))
			return
		case !h.sameOrigin(r):
			h.pages.WithLabelValues(action, "cross_origin").Inc()
			h.log.WarnContext(r.Context(), "approval page: cross-origin post refused", "action", action, "origin", r.Header.Get("Origin"))
			h.refuse(w, r, p, http.StatusForbidden, p.L.T("err.csrf"))
			return
		case !checkCSRF(r, secret, id, session):
			h.pages.WithLabelValues(action, "csrf").Inc()
			h.log.WarnContext(r.Context(), "approval page: csrf token refused", "action", action)
			h.refuse(w, r, p, http.StatusForbidden, p.L.T("err.csrf"))
			return
		}
		fn(w, r, p, session)
	}
}

// refuse shows the current page with an error.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, p *page, status int, msg string) {
	v, err := h.view(r, p.ID)
	if err != nil {
		h.fail(w, r, p, "view", err)
		return
	}
	h.fill(p, v)
	p.Error = msg
	h.render(w, r, status, p)
}

// fail shows the page for a refusal of the transaction core, with the
// status and message its code calls for.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, p *page, action string, err error) {
	code := transaction.CodeOf(err)
	outcome := string(code)
	if outcome == "" {
		outcome = "internal"
	}
	h.pages.WithLabelValues(action, outcome).Inc()
	_, sh := show(err)
	status, key := sh.status, sh.key
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "approval page: step failed", "action", action, "code", code, "err", err)
	} else {
		h.log.WarnContext(r.Context(), "approval page: step refused", "action", action, "code", code)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		// A busy server (no room for the password check) or a throttled
		// sign-in says when to come back.
		if ra := limit.RetryAfterSeconds(err); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
	}
	msg := p.L.T(key)
	if code == transaction.CodeOTPChannelLocked {
		// Says until when, in the page's time.
		until := "—"
		var r *policy.Refusal
		if errors.As(err, &r) && !r.Until.IsZero() {
			until = p.Clock(r.Until)
		}
		msg = p.L.T(key, until)
	}
	if code == transaction.CodeUnknownTransaction {
		p.Step = "missing"
		p.Error = msg
		h.render(w, r, status, p)
		return
	}
	if code == transaction.CodeSessionInvalid {
		// The session is gone (signed in elsewhere, or the cookie is
		// stale): drop it so the page asks to sign in again.
		h.clearCookie(w, h.sessionCookie(p.ID))
		r = withoutCookie(r, h.sessionCookie(p.ID))
		p.CSRF = csrfToken(cookieValue(r, h.cookieName(csrfCookieName)), p.ID, "")
	}
	v, verr := h.view(r, p.ID)
	if verr != nil {
		p.Step = "missing"
		p.Error = msg
		if transaction.CodeOf(verr) == transaction.CodeUnknownTransaction {
			p.Error = p.L.T("err.not_found")
		}
		h.render(w, r, status, p)
		return
	}
	h.fill(p, v)
	if code == transaction.CodeOTPInvalid && v.OTP != nil {
		msg += " " + p.Tries(v.OTP.TriesLeft)
	}
	if p.Step == "final" && (code == transaction.CodeOTPLocked || code == transaction.CodeExpired) {
		// The final text says it all.
		msg = ""
	}
	p.Error = msg
	h.render(w, r, status, p)
}

// overRate reports whether r's client is over rate, and if so counts it
// and sets Retry-After; the caller renders its page with a 429.
func (h *Handler) overRate(w http.ResponseWriter, r *http.Request, rate *limit.Clients, action string) bool {
	err := rate.Check(limit.ClientKey(r))
	if err == nil {
		return false
	}
	h.pages.WithLabelValues(action, limit.CodeRateLimited).Inc()
	w.Header().Set("Retry-After", limit.RetryAfterSeconds(err))
	return true
}

func withoutCookie(r *http.Request, name string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	for _, c := range r.Cookies() {
		if c.Name != name {
			r2.AddCookie(c)
		}
	}
	return r2
}

// back sends the browser to the page again, after a step that worked,
// scrolled to the next step's form: on a phone it is below the documents.
func (h *Handler) back(w http.ResponseWriter, r *http.Request, id, notice string) {
	target := PathPrefix + url.PathEscape(id)
	switch notice {
	case "":
	case waitNotice:
		// No fragment: when signing has ended the page redirects to the
		// portal, and a browser carries a fragment across redirects, so
		// the portal would get its URL back with "#action" on it.
		target += "?n=" + notice
	default:
		target += "?n=" + notice + "#action"
	}
	h.headers(w)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// confirm shows what was signed, when and with which certificate (the
// page's final state, seen signed in), and sends the browser on to the
// portal's URL after ConfirmFor, by a meta refresh as the progress page
// does. The session ends here, as toPortal ends it.
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, p *page, v *transaction.View) {
	h.clearCookie(w, h.sessionCookie(p.ID))
	p.Confirm = true
	p.Refresh, p.RefreshURL = int(h.confirmFor/time.Second), v.ReturnURL
	h.render(w, r, http.StatusOK, p)
}

// toPortal sends the browser back to the portal: only ever to the URL the
// transaction core gives, which is the one the portal registered for the
// transaction, never one from the request.
func (h *Handler) toPortal(w http.ResponseWriter, r *http.Request, p *page, v *transaction.View) {
	h.clearCookie(w, h.sessionCookie(p.ID))
	if v.ReturnURL == "" {
		h.back(w, r, p.ID, "")
		return
	}
	h.headers(w)
	http.Redirect(w, r, v.ReturnURL, http.StatusSeeOther)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request, p *page, _ string) {
	citizen := strings.TrimSpace(r.PostFormValue("citizen"))
	password := r.PostFormValue("password")
	p.Citizen = citizen
	switch {
	case citizen == "":
		h.pages.WithLabelValues("login", "missing_id").Inc()
		h.refuse(w, r, p, http.StatusBadRequest, p.L.T("err.missing_id"))
		return
	case password == "":
		h.pages.WithLabelValues("login", "missing_password").Inc()
		h.refuse(w, r, p, http.StatusBadRequest, p.L.T("err.missing_password"))
		return
	}
	if h.overRate(w, r, h.opt.LoginRate, "login") {
		h.refuse(w, r, p, http.StatusTooManyRequests, p.L.T("err.rate_limited"))
		return
	}
	s, err := h.tx.Authenticate(registry.WithClient(r.Context(), clientAddr(r)), p.ID, citizen, password)
	if err != nil {
		if transaction.CodeOf(err) == transaction.CodeInvalidRequest {
			err = &transaction.Error{Code: transaction.CodeBadCredentials}
		}
		h.fail(w, r, p, "login", err)
		return
	}
	h.pages.WithLabelValues("login", "ok").Inc()
	h.setCookie(w, h.sessionCookie(p.ID), s.Token, s.View.ExpiresAt)
	// The code goes out at once, as Cl@ve does after sign-in; if the SMS
	// fails, the page offers to send it again.
	notice := ""
	if s.View.State == transaction.StateAuthenticated {
		if _, err := h.tx.SendOTP(r.Context(), p.ID, s.Token); err != nil {
			r.AddCookie(&http.Cookie{Name: h.sessionCookie(p.ID), Value: s.Token})
			p.CSRF = csrfToken(cookieValue(r, h.cookieName(csrfCookieName)), p.ID, s.Token)
			h.fail(w, r, p, "send", err)
			return
		}
		h.pages.WithLabelValues("send", "ok").Inc()
		notice = "sent"
	}
	h.back(w, r, p.ID, notice)
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request, p *page, session string) {
	if h.overRate(w, r, h.opt.SMSRate, "send") {
		h.refuse(w, r, p, http.StatusTooManyRequests, p.L.T("err.rate_limited"))
		return
	}
	if _, err := h.tx.SendOTP(r.Context(), p.ID, session); err != nil {
		h.fail(w, r, p, "send", err)
		return
	}
	h.pages.WithLabelValues("send", "ok").Inc()
	h.back(w, r, p.ID, "sent")
}

func (h *Handler) resend(w http.ResponseWriter, r *http.Request, p *page, session string) {
	if h.overRate(w, r, h.opt.SMSRate, "resend") {
		h.refuse(w, r, p, http.StatusTooManyRequests, p.L.T("err.rate_limited"))
		return
	}
	if _, err := h.tx.Resend(r.Context(), p.ID, session); err != nil {
		h.fail(w, r, p, "resend", err)
		return
	}
	h.pages.WithLabelValues("resend", "ok").Inc()
	h.back(w, r, p.ID, "resent")
}

func (h *Handler) approve(w http.ResponseWriter, r *http.Request, p *page, session string) {
	otp := r.PostFormValue("otp")
	if strings.TrimSpace(otp) == "" {
		h.pages.WithLabelValues("approve", "missing_otp").Inc()
		h.refuse(w, r, p, http.StatusBadRequest, p.L.T("err.otp_format"))
		return
	}
	v, err := h.tx.Approve(r.Context(), p.ID, session, otp)
	if err != nil {
		if transaction.CodeOf(err) == transaction.CodeInvalidRequest {
			h.pages.WithLabelValues("approve", "otp_format").Inc()
			h.refuse(w, r, p, http.StatusBadRequest, p.L.T("err.otp_format"))
			return
		}
		h.fail(w, r, p, "approve", err)
		return
	}
	h.pages.WithLabelValues("approve", "ok").Inc()
	h.log.InfoContext(r.Context(), "approval page: approved", "transaction", p.ID, "state", v.State)
	if v.State.Final() && v.State != transaction.StateDone {
		h.toPortal(w, r, p, v)
		return
	}
	// Signing goes on in the workers, whatever becomes of this request or
	// tab: the browser waits on the progress page.
	h.back(w, r, p.ID, waitNotice)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, p *page, session string) {
	v, err := h.tx.Reject(r.Context(), p.ID, session)
	if err != nil {
		h.fail(w, r, p, "reject", err)
		return
	}
	h.pages.WithLabelValues("reject", "ok").Inc()
	h.log.InfoContext(r.Context(), "approval page: rejected", "transaction", p.ID)
	h.toPortal(w, r, p, v)
}

// CommonName picks the CN out of a distinguished name in RFC 4514 form
// (as pkix.Name.String writes it), unescaped, so the page shows "GARCÍA
// PÉREZ, LUCÍA - 12345678Z" rather than the whole DN with hex-encoded
// attributes. A DN without a CN is shown whole.
func (p *page) CommonName(dn string) string {
	for _, rdn := range splitDN(dn, ',') {
		for _, atv := range splitDN(rdn, '+') {
			k, v, ok := strings.Cut(atv, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "CN") && !strings.HasPrefix(v, "#") {
				return unescapeDN(v)
			}
		}
	}
	return dn
}

// splitDN splits at sep where it is not escaped with a backslash.
func splitDN(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescapeDN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
