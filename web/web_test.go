package web_test

import (
	"context"
	"crypto/sha256"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

const (
	okURL  = "https://portal.example.es/tramite/ok"
	errURL = "https://portal.example.es/tramite/error"
)

// fixture is a stack with one portal, one advanced citizen and a browser
// (an HTTP client with a cookie jar that does not follow redirects, so
// every 303 is checked).
type fixture struct {
	*stack.Stack
	portal  *store.Portal
	citizen string
	c       *http.Client
}

func newFixture(t *testing.T, mut func(*web.Options)) *fixture {
	t.Helper()
	return newFixtureWith(t, stack.Options{Web: mut})
}

func newFixtureWith(t *testing.T, opt stack.Options) *fixture {
	t.Helper()
	s := stack.New(t, opt)
	p, _ := s.Portal("Agencia Tributaria", okURL, errURL)
	jar, _ := cookiejar.New(nil)
	return &fixture{Stack: s, portal: p, citizen: s.Advanced(12345678, "Lucía", "García Pérez"),
		c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// create makes a transaction of three documents for the citizen.
func (f *fixture) create(t *testing.T) string {
	t.Helper()
	c, err := f.Tx.Create(context.Background(), f.portal, transaction.CreateRequest{CitizenID: f.citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{
			{Name: "Declaración IRPF 2025.pdf", Content: []byte("%PDF-1.4 not really a pdf, signed raw"), Format: "raw"},
			{Name: "Anexo A — gastos.txt", Content: []byte("gastos deducibles"), Format: "raw"},
			{Name: "Resolución.xml", Digest: sha(t, "resolución"), Hash: "sha256", Format: "raw"},
		}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if c.RedirectURL != f.Server.URL+"/sign/"+c.ID {
		t.Fatalf("redirect URL %s", c.RedirectURL)
	}
	return c.ID
}

func sha(t *testing.T, s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

type resp struct {
	status int
	body   string
	loc    string
	header http.Header
}

func (f *fixture) do(t *testing.T, req *http.Request) resp {
	t.Helper()
	r, err := f.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, body: html.UnescapeString(string(b)), loc: r.Header.Get("Location"), header: r.Header}
}

func (f *fixture) get(t *testing.T, path string, hdr ...string) resp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.Server.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return f.do(t, req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf token in page:\n%s", body)
	}
	return m[1]
}

// post sends a form as the page's own form would, with Origin.
func (f *fixture) post(t *testing.T, path string, form url.Values, origin string) resp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.Server.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return f.do(t, req)
}

// login signs the citizen in through the page and returns the page with
// the OTP form.
func (f *fixture) login(t *testing.T, id string) resp {
	t.Helper()
	page := f.get(t, "/sign/"+id)
	r := f.post(t, "/sign/"+id+"/login", url.Values{"csrf": {csrfOf(t, page.body)}, "citizen": {f.citizen}, "password": {stack.Password}}, f.Server.URL)
	if r.status != http.StatusSeeOther || r.loc != "/sign/"+id+"?n=sent#action" {
		t.Fatalf("login: %d %q\n%s", r.status, r.loc, r.body)
	}
	return f.get(t, r.loc)
}

func wantIn(t *testing.T, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("page lacks %q", p)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
		t.FailNow()
	}
}

func state(t *testing.T, f *fixture, id string) transaction.State {
	t.Helper()
	v, err := f.Tx.View(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v.State
}

func TestApproveRedirectsToRegisteredOKURL(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	page := f.get(t, "/sign/"+id, "Accept-Language", "es-ES,es;q=0.9")
	v, _ := f.Tx.View(context.Background(), id)
	wantIn(t, page.body, "Agencia Tributaria le pide que firme 3 documentos.", "Declaración IRPF 2025.pdf", "Anexo A — gastos.txt",
		"Resolución.xml", "solo huella digital", v.ApprovalCode, v.Documents[0].ShortCode, v.Documents[2].ShortCode,
		`name="citizen"`, `autocomplete="current-password"`, `<meta name="viewport"`)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
		if page.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}

	otpPage := f.login(t, id)
	code, text := f.LastOTP(f.citizen)
	if !strings.Contains(text, v.ApprovalCode) {
		t.Fatalf("SMS %q does not carry the page's code %s", text, v.ApprovalCode)
	}
	// The certificate part is for the signed-in citizen only.
	wantIn(t, otpPage.body, "Le hemos enviado el código por SMS.", `autocomplete="one-time-code"`, "Le quedan 3 intentos.", v.ApprovalCode,
		"se le emitirá uno al aprobar")
	if strings.Contains(otpPage.body, stack.Mobile(f.citizen)) {
		t.Fatal("the page shows the whole mobile number")
	}

	// The form the citizen sends, kept to replay it afterwards.
	approve := url.Values{"csrf": {csrfOf(t, otpPage.body)}, "otp": {code}}
	cookies := f.c.Jar.Cookies(mustURL(f.Server.URL))
	r := f.post(t, "/sign/"+id+"/approve", approve, f.Server.URL)
	if r.status != http.StatusSeeOther || r.loc != "/sign/"+id+"?n=wait" {
		t.Fatalf("approve: %d location %q, want the progress page\n%s", r.status, r.loc, r.body)
	}
	// The progress page ends on the confirmation, which sends the
	// browser on to the portal.
	wantConfirm(t, f.follow(t, r), okURL+"?transaction_id="+id)
	if got := state(t, f, id); got != transaction.StateDone {
		t.Fatalf("state %s, want done", got)
	}

	if n := counter(t, f, "firma_web_requests_total", map[string]string{"action": "approve", "outcome": "ok"}); n != 1 {
		t.Fatalf("approvals counted: %v", n)
	}

	// The same form again, with the cookies it had: refused, no redirect.
	f.c.Jar.SetCookies(mustURL(f.Server.URL), cookies)
	r = f.post(t, "/sign/"+id+"/approve", approve, f.Server.URL)
	if r.status != http.StatusConflict || r.loc != "" {
		t.Fatalf("replayed approval: %d %q", r.status, r.loc)
	}
	wantIn(t, r.body, "el formulario no se puede enviar dos veces", "Volver a Agencia Tributaria")
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestRejectRedirectsToErrorURL: the signed-in citizen rejects and goes
// back to the portal. Before sign-in the page offers no rejection and a
// posted one is refused: whoever holds the link is not the citizen (the
// portal can still cancel through its API).
func TestRejectRedirectsToErrorURL(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	page := f.get(t, "/sign/"+id)
	if strings.Contains(page.body, `id="reject"`) {
		t.Fatal("the page offers to reject before sign-in")
	}
	r := f.post(t, "/sign/"+id+"/reject", url.Values{"csrf": {csrfOf(t, page.body)}}, f.Server.URL)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("reject before sign-in: %d %q", r.status, r.loc)
	}
	if got := state(t, f, id); got != transaction.StateCreated {
		t.Fatalf("state %s after a rejection before sign-in", got)
	}
	page = f.login(t, id)
	wantIn(t, page.body, `id="reject"`)
	r = f.post(t, "/sign/"+id+"/reject", url.Values{"csrf": {csrfOf(t, page.body)}}, f.Server.URL)
	if r.status != http.StatusSeeOther || r.loc != errURL+"?transaction_id="+id {
		t.Fatalf("reject: %d %q", r.status, r.loc)
	}
	if got := state(t, f, id); got != transaction.StateRejected {
		t.Fatalf("state %s", got)
	}
	wantIn(t, f.get(t, "/sign/"+id).body, "Rechazó esta solicitud de firma.", errURL+"?transaction_id="+id)
}

// TestPageBeforeSignInNamesNoOne: whoever holds the link sees the portal,
// the documents and the masked DNI/NIE, not the citizen's name, DNI/NIE
// or certificate; the signed-in citizen sees the certificate.
func TestPageBeforeSignInNamesNoOne(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	// A certificate exists already, so the page would have a subject to
	// show.
	if _, err := f.CA.EnsureCertificate(context.Background(), f.citizen); err != nil {
		t.Fatal(err)
	}
	page := f.get(t, "/sign/"+id, "Accept-Language", "es")
	wantIn(t, page.body, "Agencia Tributaria", "Declaración IRPF 2025.pdf", "Anexo A — gastos.txt", "Resolución.xml",
		"****"+f.citizen[len(f.citizen)-4:])
	for _, leak := range []string{f.citizen, "Lucía", "LUCÍA", "García", "GARCÍA", `id="cert-subject"`, `id="cert-serial"`} {
		if strings.Contains(page.body, leak) {
			t.Errorf("page before sign-in shows %q", leak)
		}
	}
	signed := f.login(t, id)
	wantIn(t, signed.body, `id="cert-subject"`, f.citizen)
}

// TestPasswordThrottledNotLocked: five wrong passwords on the page delay
// and then lock the sign-in a while, never for good; the right password
// works once the stated wait is over.
func TestPasswordThrottledNotLocked(t *testing.T) {
	clk := &testClock{t: time.Now()}
	f := newFixtureWith(t, stack.Options{Registry: func(o *registry.Options) { o.Clock = clk.Now }})
	id := f.create(t)
	try := func(password string) resp {
		page := f.get(t, "/sign/"+id)
		return f.post(t, "/sign/"+id+"/login", url.Values{"csrf": {csrfOf(t, page.body)}, "citizen": {f.citizen}, "password": {password}}, f.Server.URL)
	}
	for i := range 5 {
		clk.Add(time.Minute) // past each delay
		if r := try("wrong-password-1"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d\n%s", i+1, r.status, r.body)
		}
	}
	r := try(stack.Password)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("right password during the lock: %d %q", r.status, r.header.Get("Retry-After"))
	}
	wantIn(t, r.body, "Espere unos minutos y vuelva a intentarlo.")
	if strings.Contains(r.body, "bloqueada") {
		t.Fatal("the page says the password is locked")
	}
	clk.Add(15 * time.Minute)
	f.login(t, id)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestForgedPostsRefused: a post without the page's token, with a wrong
// one, from another origin, or with no origin at all changes nothing.
func TestForgedPostsRefused(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	good := csrfOf(t, f.get(t, "/sign/"+id).body)
	other := f.create(t)
	otherToken := csrfOf(t, f.get(t, "/sign/"+other).body)
	cases := []struct {
		name, csrf, origin string
	}{
		{"no token", "", f.Server.URL},
		{"wrong token", strings.Repeat("A", len(good)), f.Server.URL},
		{"token of another transaction", otherToken, f.Server.URL},
		{"foreign origin", good, "https://evil.example"},
		{"null origin", good, "null"},
		{"no origin", good, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, action := range []string{"login", "reject"} {
				form := url.Values{"csrf": {c.csrf}, "citizen": {f.citizen}, "password": {stack.Password}}
				r := f.post(t, "/sign/"+id+"/"+action, form, c.origin)
				if r.status != http.StatusForbidden {
					t.Fatalf("%s: status %d, want 403", action, r.status)
				}
				wantIn(t, r.body, "El formulario ha caducado o no procede de esta página.")
			}
			if got := state(t, f, id); got != transaction.StateCreated {
				t.Fatalf("state %s after a forged post", got)
			}
		})
	}
}

func TestOTPMessages(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	page := f.login(t, id)
	code, _ := f.LastOTP(f.citizen)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	steps := []struct {
		otp    string
		status int
		want   []string
	}{
		{"12ab", http.StatusBadRequest, []string{"El código tiene 6 dígitos.", "Le quedan 3 intentos."}},
		{wrong, http.StatusBadRequest, []string{"Código incorrecto. Le quedan 2 intentos."}},
		{wrong, http.StatusBadRequest, []string{"Código incorrecto. Le queda 1 intento."}},
		{wrong, http.StatusForbidden, []string{"Ha introducido un código incorrecto demasiadas veces", errURL + "?transaction_id=" + id}},
	}
	for i, s := range steps {
		r := f.post(t, "/sign/"+id+"/approve", url.Values{"csrf": {csrfOf(t, page.body)}, "otp": {s.otp}}, f.Server.URL)
		if r.status != s.status {
			t.Fatalf("step %d: status %d, want %d\n%s", i, r.status, s.status, r.body)
		}
		wantIn(t, r.body, s.want...)
		page = r
	}
	if got := state(t, f, id); got != transaction.StateFailed {
		t.Fatalf("state %s, want failed", got)
	}
}

func TestSignInRefusals(t *testing.T) {
	f := newFixture(t, nil)
	someoneElse := f.Advanced(87654321, "Mario", "López")
	id := f.create(t)
	cases := []struct {
		name, citizen, password string
		status                  int
		want                    string
	}{
		{"wrong password", f.citizen, "not-the-password", http.StatusUnauthorized, "DNI/NIE o contraseña incorrectos."},
		{"malformed DNI", "1234", stack.Password, http.StatusUnauthorized, "DNI/NIE o contraseña incorrectos."},
		{"another citizen", someoneElse, stack.Password, http.StatusForbidden, "Esta solicitud de firma es para otra persona."},
		{"empty DNI", "", stack.Password, http.StatusBadRequest, "Escriba su DNI o NIE."},
		{"empty password", f.citizen, "", http.StatusBadRequest, "Escriba su contraseña."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page := f.get(t, "/sign/"+id)
			r := f.post(t, "/sign/"+id+"/login", url.Values{"csrf": {csrfOf(t, page.body)}, "citizen": {c.citizen}, "password": {c.password}}, f.Server.URL)
			if r.status != c.status {
				t.Fatalf("status %d, want %d\n%s", r.status, c.status, r.body)
			}
			wantIn(t, r.body, c.want, `name="password"`)
			if strings.Contains(r.body, stack.Password) {
				t.Fatal("the page echoes the password")
			}
		})
	}
	// Wrong passwords slow down and lock a while, never for good:
	// TestPasswordThrottledNotLocked, on a test clock.
}

func TestResendLimits(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	page := f.login(t, id)
	wantIn(t, page.body, "Puede pedir 3 códigos nuevos más.")
	r := f.post(t, "/sign/"+id+"/resend", url.Values{"csrf": {csrfOf(t, page.body)}}, f.Server.URL)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("resend at once: %d\n%s", r.status, r.body)
	}
	wantIn(t, r.body, "Espere un poco antes de pedir otro código.")
	if n := f.SMSCount(f.citizen); n != 1 {
		t.Fatalf("%d SMS sent, want 1", n)
	}
}

func TestSessionBoundToTransaction(t *testing.T) {
	f := newFixture(t, nil)
	a := f.create(t)
	b := f.create(t)
	f.login(t, a)
	// B's page has no session of its own: it asks to sign in.
	wantIn(t, f.get(t, "/sign/"+b).body, `name="password"`)

	// A's session token put under B's cookie name is refused by B.
	u := mustURL(f.Server.URL)
	var tokA string
	for _, c := range f.c.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "firma-s-") {
			tokA = c.Value
		}
	}
	if tokA == "" {
		t.Fatal("no session cookie after sign-in")
	}
	sumB := sha256.Sum256([]byte(b))
	f.c.Jar.SetCookies(u, []*http.Cookie{{Name: "firma-s-" + hexs(sumB[:6]), Value: tokA, Path: "/"}})
	page := f.get(t, "/sign/"+b)
	r := f.post(t, "/sign/"+b+"/send", url.Values{"csrf": {csrfOf(t, page.body)}}, f.Server.URL)
	if r.status != http.StatusUnauthorized && r.status != http.StatusConflict {
		t.Fatalf("A's session on B: %d\n%s", r.status, r.body)
	}
	if got := state(t, f, b); got != transaction.StateCreated {
		t.Fatalf("B state %s", got)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestLanguage(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	cases := []struct {
		name    string
		hdr     []string
		want    string
		lang    string
		switch_ string
	}{
		{"default", nil, "Firma de documentos", "es", "English"},
		{"english browser", []string{"Accept-Language", "en-GB,en;q=0.9"}, "Sign documents", "en", "Español"},
		{"catalan falls back to spanish", []string{"Accept-Language", "ca-ES,ca;q=0.9,es;q=0.5"}, "Firma de documentos", "es", "English"},
		{"unknown", []string{"Accept-Language", "ja"}, "Firma de documentos", "es", "English"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.get(t, "/sign/"+id, c.hdr...)
			wantIn(t, r.body, c.want, `<html lang="`+c.lang+`">`, c.switch_)
		})
	}
	// The switch is remembered over Accept-Language.
	r := f.get(t, "/sign/"+id+"?lang=en", "Accept-Language", "es")
	if r.status != http.StatusSeeOther || r.loc != "/sign/"+id {
		t.Fatalf("switch: %d %q", r.status, r.loc)
	}
	wantIn(t, f.get(t, r.loc, "Accept-Language", "es").body, "Sign documents", "Agencia Tributaria asks you to sign 3 documents.")
}

func TestUnknownTransaction(t *testing.T) {
	f := newFixture(t, nil)
	for _, id := range []string{"0123456789abcdef0123456789abcdef", "nope", "..%2F..%2Fetc"} {
		r := f.get(t, "/sign/"+id)
		if r.status != http.StatusNotFound {
			t.Fatalf("%s: %d", id, r.status)
		}
		if !strings.Contains(r.body, "La solicitud de firma no existe") && r.status == http.StatusNotFound && strings.Contains(r.body, "<html") {
			t.Fatalf("%s: page without the message:\n%s", id, r.body)
		}
	}
}

func TestSecureCookies(t *testing.T) {
	f := newFixture(t, func(o *web.Options) { o.Secure = true })
	id := f.create(t)
	req, _ := http.NewRequest(http.MethodGet, f.Server.URL+"/sign/"+id, nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	var found bool
	for _, c := range r.Cookies() {
		if c.Name == "__Host-firma-csrf" {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
				t.Fatalf("cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no __Host-firma-csrf cookie in %v", r.Header["Set-Cookie"])
	}
	if !strings.HasPrefix(r.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatal("no HSTS header on a Secure page")
	}
}

func TestStaticAssets(t *testing.T) {
	f := newFixture(t, nil)
	r := f.get(t, "/sign/assets/style.css")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || !strings.Contains(r.body, "@media") {
		t.Fatalf("style.css: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

// clock is the transaction core's time, moved by the tests.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }

func newClockFixture(t *testing.T) (*fixture, *clock) {
	t.Helper()
	c := &clock{}
	s := stack.New(t, stack.Options{Transaction: func(o *transaction.Options) { o.Clock = c.Now }})
	p, _ := s.Portal("Agencia Tributaria", okURL, errURL)
	jar, _ := cookiejar.New(nil)
	return &fixture{Stack: s, portal: p, citizen: s.Advanced(12345678, "Lucía", "García Pérez"),
		c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, c
}

func TestResendAndExpiry(t *testing.T) {
	f, c := newClockFixture(t)
	id := f.create(t)
	page := f.login(t, id)
	first, _ := f.LastOTP(f.citizen)

	// After the gap, a new code replaces the old one.
	c.Add(31 * time.Second)
	r := f.post(t, "/sign/"+id+"/resend", url.Values{"csrf": {csrfOf(t, page.body)}}, f.Server.URL)
	if r.status != http.StatusSeeOther || r.loc != "/sign/"+id+"?n=resent#action" {
		t.Fatalf("resend: %d %q\n%s", r.status, r.loc, r.body)
	}
	page = f.get(t, r.loc)
	wantIn(t, page.body, "Le hemos enviado un código nuevo.", "Puede pedir 2 códigos nuevos más.")
	second, _ := f.LastOTP(f.citizen)
	if f.SMSCount(f.citizen) != 2 {
		t.Fatalf("%d SMS, want 2", f.SMSCount(f.citizen))
	}
	if first != second {
		r = f.post(t, "/sign/"+id+"/approve", url.Values{"csrf": {csrfOf(t, page.body)}, "otp": {first}}, f.Server.URL)
		wantIn(t, r.body, "Código incorrecto.")
	}

	// The code expires after five minutes.
	c.Add(5*time.Minute + time.Second)
	r = f.post(t, "/sign/"+id+"/approve", url.Values{"csrf": {csrfOf(t, page.body)}, "otp": {second}}, f.Server.URL)
	if r.status != http.StatusBadRequest {
		t.Fatalf("expired code: %d", r.status)
	}
	wantIn(t, r.body, "El código ha caducado. Pida uno nuevo.")

	// The transaction expires after ten minutes: the page says so and
	// offers the way back to the portal's error URL.
	c.Add(5 * time.Minute)
	r = f.get(t, "/sign/"+id)
	wantIn(t, r.body, "Esta solicitud de firma ha caducado sin firmarse.", errURL+"?transaction_id="+id)
	if strings.Contains(r.body, `name="otp"`) || strings.Contains(r.body, `name="password"`) {
		t.Fatal("an expired transaction still shows a form")
	}
}

// TestFlowContinuesOnAnotherNode: the citizen signs in on one node and
// approves on another sharing the store and OTP key, as after a restart
// or behind a load balancer: the page keeps no state of its own.
func TestFlowContinuesOnAnotherNode(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	page := f.login(t, id)
	code, _ := f.LastOTP(f.citizen)

	var node2 *httptest.Server
	var h http.Handler
	node2 = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer node2.Close()
	tx2, err := transaction.New(transaction.Options{Store: f.DB, Portals: f.Portals, Citizens: f.Registry, Certificates: f.CA, Signing: f.Signing,
		SMS: f.Outbox, OTPKey: f.OTPKey, BaseURL: node2.URL})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := web.New(web.Options{Transactions: tx2, BaseURL: node2.URL})
	if err != nil {
		t.Fatal(err)
	}
	h = w2
	// Cookies are per host, not per port: the jar sends node 1's to node 2.
	req, _ := http.NewRequest(http.MethodPost, node2.URL+"/sign/"+id+"/approve",
		strings.NewReader(url.Values{"csrf": {csrfOf(t, page.body)}, "otp": {code}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", node2.URL)
	r := f.do(t, req)
	if r.status != http.StatusSeeOther || r.loc != "/sign/"+id+"?n=wait" {
		t.Fatalf("approve on node 2: %d %q\n%s", r.status, r.loc, r.body)
	}
	if v := f.WaitEnded(id); v.State != transaction.StateDone {
		t.Fatalf("signed on node 2: %s %s", v.State, v.ErrorMessage)
	}
	tx2.Stop(context.Background())
}

var refreshRE = regexp.MustCompile(`http-equiv="refresh" content="(\d+);url=([^"]+)"`)

// follow is a browser without JavaScript after an approval: it loads the
// progress page r points to and then each meta refresh's target (at once
// rather than after the refresh's seconds: a poll), until a page sends it
// elsewhere or no longer refreshes; it returns that last answer.
func (f *fixture) follow(t *testing.T, r resp) resp {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for r.status == http.StatusSeeOther && strings.HasPrefix(r.loc, "/sign/") {
		r = f.get(t, r.loc)
		for r.status == http.StatusOK {
			m := refreshRE.FindStringSubmatch(r.body)
			if m == nil || !strings.HasPrefix(html.UnescapeString(m[2]), "/sign/") {
				// The end, or the confirmation that leaves for the portal.
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("still on the progress page after a minute:\n%s", r.body)
			}
			time.Sleep(10 * time.Millisecond)
			r = f.get(t, html.UnescapeString(m[2]))
		}
	}
	return r
}

// TestProgressPage shows a transaction half-signed by a worker as the
// progress page: documents processed out of the total, a meta refresh (no
// script: the CSP allows none inline) to the page marked as waited on,
// and nothing to post; once done, that refresh goes on to the portal.
func TestProgressPage(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	ctx := context.Background()
	// As a worker on another node leaves it: signing, its lease live, the
	// first document's outcome stored.
	st, err := f.DB.Transaction(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	st.State, st.ApprovedAt, st.ExpiresAt, st.UpdatedAt = string(transaction.StateSigning), now, now.Add(time.Hour), now
	if err := f.DB.UpdateTransaction(ctx, st); err != nil {
		t.Fatal(err)
	}
	docs, err := f.DB.Documents(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	docs[0].Status, docs[0].Result, docs[0].SignedAt = string(transaction.DocSigned), []byte("sig"), now
	if _, err := f.DB.UpdateDocuments(ctx, docs[:1], string(transaction.DocPending)); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []struct{ accept, text string }{{"es-ES", "1 de 3 documentos procesados."}, {"en-GB", "1 of 3 documents processed."}} {
		r := f.get(t, "/sign/"+id+"?n=wait", "Accept-Language", lang.accept)
		wantIn(t, r.body, `<progress id="progress" max="3" value="1">`, lang.text,
			`<meta http-equiv="refresh" content="2;url=/sign/`+id+`?n=wait">`)
		if r.status != http.StatusOK || strings.Contains(r.body, "<form") || strings.Contains(r.body, "<script") {
			t.Fatalf("progress page: %d, with a form or a script:\n%s", r.status, r.body)
		}
	}
	// Done: the waited-on page sends the browser to the portal; the page
	// itself, not waited on, shows the outcome.
	st, _ = f.DB.Transaction(ctx, id)
	st.State, st.Summary, st.EndedAt = string(transaction.StateDone), string(transaction.SummaryAllSigned), now
	if err := f.DB.UpdateTransaction(ctx, st); err != nil {
		t.Fatal(err)
	}
	wantConfirm(t, f.get(t, "/sign/"+id+"?n=wait"), okURL+"?transaction_id="+id)
	r := f.get(t, "/sign/"+id)
	if r.status != http.StatusOK || strings.Contains(r.body, "http-equiv=\"refresh\"") {
		t.Fatalf("the final page: %d\n%s", r.status, r.body)
	}
}

// wantConfirm checks the confirmation after a signing: the page, its
// time with its zone, and a meta refresh on to the portal's URL.
func wantConfirm(t *testing.T, r resp, portalURL string) {
	t.Helper()
	m := refreshRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || html.UnescapeString(m[2]) != portalURL || !strings.Contains(r.body, `id="confirm"`) {
		t.Fatalf("confirmation: %d, refresh %q, want one to %s\n%s", r.status, m, portalURL, r.body)
	}
	if !regexp.MustCompile(`Firmado el \d\d/\d\d/\d{4} \d\d:\d\d:\d\d (CET|CEST)\.`).MatchString(r.body) {
		t.Errorf("confirmation without its time and zone:\n%s", r.body)
	}
}

// counter reads a counter from the stack's registry.
func counter(t *testing.T, f *fixture, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := f.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestNamesAreEscaped: document and portal names are text, never markup.
func TestNamesAreEscaped(t *testing.T) {
	s := stack.New(t, stack.Options{})
	p, _ := s.Portal(`Portal <b onmouseover="x()">`, okURL, errURL)
	citizen := s.Advanced(12345678, "Lucía", "García Pérez")
	c, err := s.Tx.Create(context.Background(), p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: `<script>alert("x")</script>.pdf`, Content: []byte("x"), Format: "raw"}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(c.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, bad := range []string{"<script>", `<b onmouseover`} {
		if strings.Contains(string(raw), bad) {
			t.Fatalf("page contains %q unescaped", bad)
		}
	}
	if !strings.Contains(string(raw), "&lt;script&gt;") {
		t.Fatal("the document name is missing")
	}
}

// TestOTPChannelLocked: three wrong codes on one transaction lock the
// citizen's codes, so signing in to another transaction sends none and
// the page says until when; that transaction is not failed.
func TestOTPChannelLocked(t *testing.T) {
	f := newFixture(t, nil)
	first := f.create(t)
	page := f.login(t, first)
	code, _ := f.LastOTP(f.citizen)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for range 3 {
		page = f.post(t, "/sign/"+first+"/approve", url.Values{"csrf": {csrfOf(t, page.body)}, "otp": {wrong}}, f.Server.URL)
	}
	if got := state(t, f, first); got != transaction.StateFailed {
		t.Fatalf("first transaction %s, want failed", got)
	}
	until, err := f.Tx.Attempts().State(context.Background(), policy.OTPScope(f.citizen), time.Now())
	if err != nil || until.LockedUntil.IsZero() {
		t.Fatalf("the citizen's channel is not locked: %+v %v", until, err)
	}
	sent := f.SMSCount(f.citizen)
	second := f.create(t)
	p := f.get(t, "/sign/"+second)
	r := f.post(t, "/sign/"+second+"/login", url.Values{"csrf": {csrfOf(t, p.body)}, "citizen": {f.citizen}, "password": {stack.Password}}, f.Server.URL)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("sign-in on a locked channel: %d\n%s", r.status, r.body)
	}
	madrid, _ := time.LoadLocation("Europe/Madrid")
	wantIn(t, r.body, "no se envían ni se comprueban códigos hasta las "+until.LockedUntil.In(madrid).Format("15:04"))
	if n := f.SMSCount(f.citizen); n != sent {
		t.Fatalf("%d SMS sent on a locked channel", n-sent)
	}
	if got := state(t, f, second); got != transaction.StateAuthenticated {
		t.Fatalf("second transaction %s, want authenticated (waiting)", got)
	}
}
