package web_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

var meKey = []byte("me-test-session-key-0123456789abcdef")

// signed approves one transaction of three documents through the page and
// returns its id.
func (f *fixture) signed(t *testing.T) string {
	t.Helper()
	id := f.create(t)
	otpPage := f.login(t, id)
	code, _ := f.LastOTP(f.citizen)
	r := f.post(t, "/sign/"+id+"/approve", url.Values{"csrf": {csrfOf(t, otpPage.body)}, "otp": {code}}, f.Server.URL)
	if r.status != http.StatusSeeOther {
		t.Fatalf("approve: %d\n%s", r.status, r.body)
	}
	if v := f.WaitEnded(id); v.State != transaction.StateDone {
		t.Fatalf("signing ended %s: %s", v.State, v.ErrorMessage)
	}
	return id
}

// meLogin signs in on /me with the given credentials.
func (f *fixture) meLogin(t *testing.T, citizen, password string) resp {
	t.Helper()
	page := f.get(t, "/me")
	return f.post(t, "/me/login", url.Values{"csrf": {csrfOf(t, page.body)}, "citizen": {citizen}, "password": {password}}, f.Server.URL)
}

func (f *fixture) browser() *fixture {
	jar, _ := cookiejar.New(nil)
	g := *f
	g.c = &http.Client{Jar: jar, CheckRedirect: f.c.CheckRedirect}
	return &g
}

func meCookie(citizen string, exp time.Time, key []byte) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(citizen)) + "." + strconv.FormatInt(exp.Unix(), 10) +
		"." + strconv.FormatInt(time.Now().UnixNano(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("firma-me-v1\x00" + payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestMeShowsOwnKeyUses(t *testing.T) {
	f := newFixture(t, func(o *web.Options) { o.SessionKey = meKey })
	id := f.signed(t)
	v, err := f.Tx.View(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	// The approval page links to /me.
	wantIn(t, f.get(t, "/sign/"+id, "Accept-Language", "es").body, `href="/me"`, "Ver el uso de su clave de firma")

	page := f.get(t, "/me", "Accept-Language", "es")
	wantIn(t, page.body, `action="/me/login"`, `autocomplete="current-password"`)
	if strings.Contains(page.body, "Agencia Tributaria") {
		t.Fatal("signed-out page shows key uses")
	}

	r := f.meLogin(t, f.citizen, stack.Password)
	if r.status != http.StatusSeeOther || r.loc != "/me" {
		t.Fatalf("sign-in: %d %q\n%s", r.status, r.loc, r.body)
	}
	c := r.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(c, want) {
			t.Errorf("session cookie %q lacks %s", c, want)
		}
	}
	if strings.Contains(c, stack.Password) {
		t.Fatal("the cookie carries the password")
	}
	me := f.get(t, "/me", "Accept-Language", "es")
	if me.status != http.StatusOK {
		t.Fatalf("/me: %d", me.status)
	}
	wantIn(t, me.body, `id="uses"`, "Agencia Tributaria", "3 documento(s)", "Firmado", "Declaración IRPF 2025.pdf",
		"Anexo A — gastos.txt", "Resolución.xml", v.Documents[0].ShortCode, v.Documents[1].ShortCode, v.Documents[2].ShortCode, `id="signout"`)
	if n := strings.Count(me.body, `class="use"`); n != 1 {
		t.Fatalf("%d key uses shown, want 1", n)
	}

	// Another citizen, in another browser, sees none of them.
	other := stack.DNI(87654321)
	if got := f.Advanced(87654321, "Pedro", "Sánchez Ruiz"); got != other {
		t.Fatalf("registered %s, want %s", got, other)
	}
	g := f.browser()
	if r := g.meLogin(t, other, stack.Password); r.status != http.StatusSeeOther {
		t.Fatalf("other sign-in: %d\n%s", r.status, r.body)
	}
	om := g.get(t, "/me", "Accept-Language", "es")
	wantIn(t, om.body, "Su clave no se ha usado todavía.", `id="signout"`)
	for _, leak := range []string{"Agencia Tributaria", "Declaración IRPF", v.Documents[0].ShortCode} {
		if strings.Contains(om.body, leak) {
			t.Fatalf("another citizen sees %q", leak)
		}
	}

	// Sign out: the cookie goes and the page asks to sign in again.
	old := sessionCookie(t, c)
	so := f.post(t, "/me/logout", url.Values{"csrf": {csrfOf(t, me.body)}}, f.Server.URL)
	if so.status != http.StatusSeeOther || !strings.Contains(so.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %d %q", so.status, so.header.Get("Set-Cookie"))
	}
	after := f.get(t, "/me")
	if strings.Contains(after.body, "Agencia Tributaria") || !strings.Contains(after.body, `action="/me/login"`) {
		t.Fatal("still signed in after signing out")
	}
	// A copy of the old cookie (another browser, a stolen one) is refused
	// too: signing out revoked it on the server.
	h := f.browser()
	h.c.Jar.SetCookies(mustURL(f.Server.URL), []*http.Cookie{{Name: "firma-me", Value: old}})
	if r := h.get(t, "/me"); strings.Contains(r.body, "Agencia Tributaria") || !strings.Contains(r.body, `action="/me/login"`) {
		t.Fatal("the cookie of a signed-out session still works")
	}
	// Signing in again works, with a new cookie.
	if r := f.meLogin(t, f.citizen, stack.Password); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in after sign-out: %d\n%s", r.status, r.body)
	}
	wantIn(t, f.get(t, "/me").body, "Agencia Tributaria")
}

// sessionCookie is the value of firma-me in a Set-Cookie header.
func sessionCookie(t *testing.T, setCookie string) string {
	t.Helper()
	m := regexp.MustCompile(`firma-me=([^;]+)`).FindStringSubmatch(setCookie)
	if m == nil {
		t.Fatalf("no session cookie in %q", setCookie)
	}
	return m[1]
}

func TestMeRefusals(t *testing.T) {
	f := newFixture(t, func(o *web.Options) { o.SessionKey = meKey })
	f.signed(t)
	u := mustURL(f.Server.URL)

	t.Run("sign-in", func(t *testing.T) {
		for _, tc := range []struct {
			name, citizen, password string
			status                  int
			msg                     string
		}{
			{"wrong password", f.citizen, "not-the-password-1", http.StatusUnauthorized, "DNI/NIE o contraseña incorrectos."},
			{"unknown citizen", stack.DNI(11111111), stack.Password, http.StatusUnauthorized, "DNI/NIE o contraseña incorrectos."},
			{"not a DNI", "12345", stack.Password, http.StatusUnauthorized, "DNI/NIE o contraseña incorrectos."},
			{"no DNI", "", stack.Password, http.StatusBadRequest, "Escriba su DNI o NIE."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g := f.browser()
				g.c.Jar.SetCookies(u, []*http.Cookie{{Name: "firma-lang", Value: "es"}})
				r := g.meLogin(t, tc.citizen, tc.password)
				if r.status != tc.status || strings.Contains(r.header.Get("Set-Cookie"), "firma-me=") {
					t.Fatalf("status %d, want %d; cookies %q", r.status, tc.status, r.header.Get("Set-Cookie"))
				}
				wantIn(t, r.body, tc.msg)
				if strings.Contains(r.body, tc.password) {
					t.Fatal("the page echoes the password")
				}
			})
		}
	})

	t.Run("csrf", func(t *testing.T) {
		g := f.browser()
		page := g.get(t, "/me")
		form := url.Values{"citizen": {f.citizen}, "password": {stack.Password}}
		for _, tc := range []struct {
			name, csrf, origin string
		}{
			{"no token", "", f.Server.URL},
			{"wrong token", "AAAA" + csrfOf(t, page.body)[4:], f.Server.URL},
			{"cross origin", csrfOf(t, page.body), "https://evil.example"},
			{"no origin", csrfOf(t, page.body), ""},
		} {
			form.Set("csrf", tc.csrf)
			r := g.post(t, "/me/login", form, tc.origin)
			if r.status != http.StatusForbidden || strings.Contains(r.header.Get("Set-Cookie"), "firma-me=") {
				t.Fatalf("%s: %d %q", tc.name, r.status, r.header.Get("Set-Cookie"))
			}
		}
	})

	t.Run("cookies", func(t *testing.T) {
		valid := meCookie(f.citizen, time.Now().Add(time.Minute), meKey)
		parts := strings.Split(valid, ".")
		for _, tc := range []struct{ name, value string }{
			{"expired", meCookie(f.citizen, time.Now().Add(-time.Second), meKey)},
			{"other key", meCookie(f.citizen, time.Now().Add(time.Minute), []byte("another-key-0123456789abcdef-0123456"))},
			{"citizen swapped", base64.RawURLEncoding.EncodeToString([]byte(stack.DNI(11111111))) + "." + parts[1] + "." + parts[2] + "." + parts[3]},
			{"expiry extended", parts[0] + "." + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + "." + parts[2] + "." + parts[3]},
			{"no mac", parts[0] + "." + parts[1] + "." + parts[2]},
			{"issued later", parts[0] + "." + parts[1] + "." + strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10) + "." + parts[3]},
			{"garbage", "x"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g := f.browser()
				g.c.Jar.SetCookies(u, []*http.Cookie{{Name: "firma-me", Value: tc.value}})
				r := g.get(t, "/me")
				if strings.Contains(r.body, `id="uses"`) || strings.Contains(r.body, "Agencia Tributaria") || !strings.Contains(r.body, `action="/me/login"`) {
					t.Fatalf("cookie accepted:\n%s", r.body)
				}
			})
		}
		// The control: the same construction with the right key works, so
		// the refusals above are of the changes, not of the format.
		g := f.browser()
		g.c.Jar.SetCookies(u, []*http.Cookie{{Name: "firma-me", Value: valid}})
		wantIn(t, g.get(t, "/me").body, "Agencia Tributaria")
	})
}

func TestMeLockoutAndPaging(t *testing.T) {
	f := newFixture(t, func(o *web.Options) { o.SessionKey = meKey })

	// 21 signatures: one page of 20 and one of 1.
	var ids []string
	for range 21 {
		ids = append(ids, f.signed(t))
	}
	if r := f.meLogin(t, f.citizen, stack.Password); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", r.status, r.body)
	}
	first := f.get(t, "/me")
	if n := strings.Count(first.body, `class="use"`); n != 20 {
		t.Fatalf("first page: %d rows, want 20", n)
	}
	m := regexp.MustCompile(`href="(/me\?c=\d+)" id="next"`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatalf("no next link:\n%s", first.body)
	}
	second := f.get(t, m[1])
	if n := strings.Count(second.body, `class="use"`); n != 1 || strings.Contains(second.body, `id="next"`) || !strings.Contains(second.body, `id="first"`) {
		t.Fatalf("second page: %d rows\n%s", n, second.body)
	}
	if r := f.get(t, "/me?c=-1"); r.status != http.StatusBadRequest {
		t.Fatalf("negative cursor: %d", r.status)
	}
	if r := f.get(t, "/me?c=x"); r.status != http.StatusBadRequest {
		t.Fatalf("bad cursor: %d", r.status)
	}

	// English on request, remembered.
	if r := f.get(t, "/me?lang=en"); r.status != http.StatusSeeOther || r.loc != "/me" {
		t.Fatalf("language switch: %d %q", r.status, r.loc)
	}
	wantIn(t, f.get(t, "/me").body, "Use of your signing key", "Signed", "Sign out")

}

// TestMeSameAnswerForUnknownDNI: a wrong password for an unregistered
// DNI/NIE is answered exactly as one for a registered citizen's, and so
// is the wait that follows (the typed DNI, echoed in the form, and the
// form token aside): the page never tells which DNIs are registered.
func TestMeSameAnswerForUnknownDNI(t *testing.T) {
	clk := &testClock{t: time.Now()} // still: the second try falls in the first one's delay
	f := newFixtureWith(t, stack.Options{Web: func(o *web.Options) { o.SessionKey = meKey },
		Registry: func(o *registry.Options) { o.Clock = clk.Now }})
	u := mustURL(f.Server.URL)
	g := f.browser()
	g.c.Jar.SetCookies(u, []*http.Cookie{{Name: "firma-lang", Value: "es"}})
	unknown := stack.DNI(11111111)
	strip := func(r resp, dni string) string {
		return fmt.Sprintf("%d %s", r.status, strings.ReplaceAll(csrfRE.ReplaceAllString(r.body, ""), dni, "DNI"))
	}
	for i := range 2 {
		known, other := g.meLogin(t, f.citizen, "wrong-password-123"), g.meLogin(t, unknown, "wrong-password-123")
		if a, b := strip(known, f.citizen), strip(other, unknown); a != b {
			t.Fatalf("try %d: a registered and an unregistered DNI are answered differently:\n%s\n---\n%s", i+1, a, b)
		}
		if want := []int{http.StatusUnauthorized, http.StatusTooManyRequests}[i]; known.status != want {
			t.Fatalf("try %d: %d, want %d\n%s", i+1, known.status, want, known.body)
		}
		if strings.Contains(known.body, "bloqueada") {
			t.Fatalf("try %d: the page says the password is locked", i+1)
		}
	}
}

// TestMeSignOutRevokesWithoutStore: without Options.Sessions the sign-out
// is kept in the process, and still refuses a copy of the old cookie.
func TestMeSignOutRevokesWithoutStore(t *testing.T) {
	f := newFixture(t, func(o *web.Options) { o.SessionKey, o.Sessions = meKey, nil })
	f.signed(t)
	r := f.meLogin(t, f.citizen, stack.Password)
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", r.status, r.body)
	}
	old := sessionCookie(t, r.header.Get("Set-Cookie"))
	me := f.get(t, "/me")
	wantIn(t, me.body, "Agencia Tributaria")
	if so := f.post(t, "/me/logout", url.Values{"csrf": {csrfOf(t, me.body)}}, f.Server.URL); so.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", so.status)
	}
	g := f.browser()
	g.c.Jar.SetCookies(mustURL(f.Server.URL), []*http.Cookie{{Name: "firma-me", Value: old}})
	if r := g.get(t, "/me"); strings.Contains(r.body, "Agencia Tributaria") || !strings.Contains(r.body, `action="/me/login"`) {
		t.Fatal("the cookie of a signed-out session still works")
	}
}
