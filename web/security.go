package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Cookie names. With Secure they carry the __Host- prefix, which the
// browser only accepts from HTTPS, with Path=/ and no Domain: a sibling
// subdomain then cannot plant one (cookie tossing) to fix a session or a
// CSRF token.
const (
	csrfCookieName    = "firma-csrf"
	sessionCookieName = "firma-s-"
)

func (h *Handler) cookieName(base string) string {
	if h.opt.Secure {
		return "__Host-" + base
	}
	return base
}

// sessionCookie names the cookie holding the citizen's session for one
// transaction; one per transaction, so two open requests do not sign each
// other out.
func (h *Handler) sessionCookie(txID string) string {
	sum := sha256.Sum256([]byte(txID))
	return h.cookieName(sessionCookieName + hex.EncodeToString(sum[:6]))
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: h.opt.Secure, SameSite: http.SameSiteStrictMode}
	if !expires.IsZero() {
		c.Expires = expires
		c.MaxAge = max(1, int(time.Until(expires)/time.Second))
	}
	http.SetCookie(w, c)
}

func (h *Handler) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, Secure: h.opt.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfSecret returns the browser's CSRF secret, setting a new one if it
// has none. The secret lives in a SameSite=Strict, HttpOnly cookie; forms
// carry a token derived from it.
func (h *Handler) csrfSecret(w http.ResponseWriter, r *http.Request) string {
	name := h.cookieName(csrfCookieName)
	if v := cookieValue(r, name); len(v) == 43 {
		return v
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; a page without
		// a usable token only makes its forms fail closed.
		return ""
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	h.setCookie(w, name, v, time.Time{})
	// The request carries it from now on, so the page rendered now gets a
	// token that matches.
	r.AddCookie(&http.Cookie{Name: name, Value: v})
	return v
}

// csrfToken is the form token for a transaction and session: an HMAC
// keyed with the browser's secret, so it is per browser, per transaction
// and per sign-in, and a form from before sign-in stops working after it.
func csrfToken(secret, txID, session string) string {
	if secret == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("firma-csrf-v1\x00" + txID + "\x00" + session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF compares the form's token with the expected one in constant
// time.
func checkCSRF(r *http.Request, secret, txID, session string) bool {
	want := csrfToken(secret, txID, session)
	got := r.PostFormValue("csrf")
	return want != "" && hmac.Equal([]byte(got), []byte(want))
}

// sameOrigin checks a POST came from one of our pages: the Origin header
// (or, from browsers that omit it, the Referer) must be an allowed origin.
// A request with neither is refused: every browser this page supports
// sends Origin on a form POST.
func (h *Handler) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		ref, err := url.Parse(r.Referer())
		if err != nil || ref.Host == "" {
			return false
		}
		o = ref.Scheme + "://" + ref.Host
	}
	o = strings.ToLower(o)
	if len(h.origins) > 0 {
		for _, a := range h.origins {
			if o == a {
				return true
			}
		}
		return false
	}
	scheme := "http"
	if r.TLS != nil || h.opt.Secure {
		scheme = "https"
	}
	return o == scheme+"://"+strings.ToLower(r.Host)
}

// headers are set on every page: nothing is loaded from anywhere but
// here, no script runs, the page cannot be framed, the transaction id in
// the URL is not sent to other sites as a referrer, and once served over
// HTTPS the browser keeps to HTTPS.
func (h *Handler) headers(w http.ResponseWriter) {
	hd := w.Header()
	if h.opt.Secure {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	hd.Set("Cache-Control", "no-store")
}
