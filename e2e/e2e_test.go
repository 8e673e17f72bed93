package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/e2e/stack"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// document is one document the portal asks to have signed.
type document struct {
	name    string
	content []byte
	digest  bool   // send only the SHA-256
	format  string // raw or cades
}

var documents = []document{
	{name: "Modelo 303 - IVA tercer trimestre.pdf", content: []byte("%PDF-1.7 modelo 303, base imponible 12.345,67 EUR"), digest: true, format: "raw"},
	{name: "Resolución de la solicitud 2026-981.txt", content: []byte("Se resuelve conceder la ayuda solicitada.\n"), format: "raw"},
	{name: "Acuse de recibo.txt", content: []byte("Acuse de recibo de la notificación 2026/11/25-0042\n"), format: "cades"},
}

// portalApp is a portal: it starts a signature through firmad's portal
// API and sends the browser there; firmad sends the browser back to its
// OK or error URL, where it collects the result through the API.
type portalApp struct {
	t       *testing.T
	firmad  string
	apiKey  string
	citizen string
	srv     *httptest.Server
	url     string       // the portal's base URL, on another site than firmad's
	client  *http.Client // to firmad

	mu      sync.Mutex
	results map[string]*portalhttp.ResultJSON // by transaction id, from the OK URL
	errors  map[string]*portalhttp.StateJSON  // by transaction id, from the error URL
	created []string
}

func newPortal(t *testing.T, s *stack.Stack, citizen string) *portalApp {
	p := &portalApp{t: t, firmad: s.Server.URL, client: s.Server.Client(), citizen: citizen, results: map[string]*portalhttp.ResultJSON{},
		errors: map[string]*portalhttp.StateJSON{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /start", p.start)
	mux.HandleFunc("GET /ok", p.ok)
	mux.HandleFunc("GET /error", p.fail)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	// localhost and 127.0.0.1 are different sites to the browser, so the
	// redirects between portal and firmad are cross-site as in production,
	// where SameSite=Strict cookies are not sent on arrival.
	p.url = strings.Replace(p.srv.URL, "127.0.0.1", "localhost", 1)
	_, p.apiKey = s.Portal("Sede electrónica de pruebas", p.url+"/ok", p.url+"/error")
	return p
}

// api calls firmad's portal API.
func (p *portalApp) api(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.firmad+path, rd)
	req.Header.Set("X-API-Key", p.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

func (p *portalApp) start(w http.ResponseWriter, r *http.Request) {
	req := portalhttp.CreateJSON{SubjectID: p.citizen, OKURL: p.url + "/ok", ErrorURL: p.url + "/error"}
	for _, d := range documents {
		dj := portalhttp.DocumentJSON{Name: d.name, Format: d.format, MediaType: "text/plain"}
		if d.digest {
			sum := sha256.Sum256(d.content)
			dj.Digest, dj.Hash = sum[:], "sha256"
		} else {
			dj.Content = d.content
		}
		req.Documents = append(req.Documents, dj)
	}
	var c portalhttp.CreatedJSON
	if err := p.api(http.MethodPost, "/api/v1/transactions", req, &c); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	p.created = append(p.created, c.TransactionID)
	p.mu.Unlock()
	http.Redirect(w, r, c.RedirectURL, http.StatusSeeOther)
}

func (p *portalApp) ok(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("transaction_id")
	var res portalhttp.ResultJSON
	if err := p.api(http.MethodGet, "/api/v1/transactions/"+id+"/result", nil, &res); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	p.results[id] = &res
	p.mu.Unlock()
	fmt.Fprintf(w, `<!DOCTYPE html><title>Portal</title><h1 id="done">Trámite firmado: %s</h1>`, html.EscapeString(id))
}

func (p *portalApp) fail(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("transaction_id")
	var st portalhttp.StateJSON
	if err := p.api(http.MethodGet, "/api/v1/transactions/"+id, nil, &st); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	p.errors[id] = &st
	p.mu.Unlock()
	fmt.Fprintf(w, `<!DOCTYPE html><title>Portal</title><h1 id="failed">Trámite no firmado: %s (%s)</h1>`, html.EscapeString(id), html.EscapeString(string(st.State)))
}

func (p *portalApp) lastCreated() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.created) == 0 {
		p.t.Fatal("the portal created no transaction")
	}
	return p.created[len(p.created)-1]
}

// signIn walks the browser from the portal to the code form.
func signIn(t *testing.T, ctx context.Context, p *portalApp) string {
	t.Helper()
	do(t, ctx, "follow the portal to the approval page",
		chromedp.Navigate(p.url+"/start"),
		chromedp.WaitVisible(chromedp.CSS("#citizen")))
	id := p.lastCreated()
	loc := get(t, ctx, "location", chromedp.Location())
	if loc != p.firmad+"/sign/"+id {
		t.Fatalf("browser at %s, want the approval page of %s", loc, id)
	}
	page := get(t, ctx, "page text", chromedp.Text(chromedp.CSS("main")))
	for _, d := range documents {
		if !strings.Contains(page, d.name) {
			t.Fatalf("the page does not list %q:\n%s", d.name, page)
		}
	}
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#citizen"), p.citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	return id
}

// TestBrowserApprovesBatch is the whole flow in a real browser: portal
// -> approval page -> sign-in -> SMS code from the outbox -> approve ->
// portal OK URL; then every signature is checked with openssl.
func TestBrowserApprovesBatch(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(23456789, "Lucía", "García Pérez")
	p := newPortal(t, s, citizen)
	ctx := browser(t)

	id := signIn(t, ctx, p)
	code, text := s.LastOTP(citizen)
	shown := get(t, ctx, "approval code", chromedp.Text(chromedp.CSS("#approval-code")))
	if !strings.Contains(text, shown) {
		t.Fatalf("the SMS %q does not carry the code %s the page shows", text, shown)
	}
	do(t, ctx, "approve",
		chromedp.SendKeys(chromedp.CSS("#otp"), code),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#done")))
	loc := get(t, ctx, "location", chromedp.Location())
	if want := p.url + "/ok?transaction_id=" + id; loc != want {
		t.Fatalf("browser landed on %s, want %s", loc, want)
	}

	p.mu.Lock()
	res := p.results[id]
	p.mu.Unlock()
	if res == nil {
		t.Fatal("the portal has no result")
	}
	if res.State != transaction.StateDone || res.Summary != transaction.SummaryAllSigned || len(res.Documents) != len(documents) {
		t.Fatalf("result: state %s summary %s, %d documents", res.State, res.Summary, len(res.Documents))
	}
	verifyWithOpenSSL(t, s, res)
}

// TestBrowserRejects: the citizen rejects and lands on the portal's error
// URL; nothing was signed.
func TestBrowserRejects(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(34567890, "Jorge", "Martín Sanz")
	p := newPortal(t, s, citizen)
	ctx := browser(t)

	id := signIn(t, ctx, p)
	do(t, ctx, "reject", chromedp.Click(chromedp.CSS("#reject")), chromedp.WaitVisible(chromedp.CSS("#failed")))
	loc := get(t, ctx, "location", chromedp.Location())
	if want := p.url + "/error?transaction_id=" + id; loc != want {
		t.Fatalf("browser landed on %s, want %s", loc, want)
	}
	p.mu.Lock()
	st := p.errors[id]
	p.mu.Unlock()
	if st == nil || st.State != transaction.StateRejected || st.ErrorCode != transaction.CodeCancelledByCitizen {
		t.Fatalf("the portal sees %+v, want rejected by the citizen", st)
	}
	for _, d := range st.Documents {
		if d.Status == transaction.DocSigned || len(d.Signature) > 0 {
			t.Fatalf("document %d signed after a rejection", d.Index)
		}
	}
	// Back in the browser, the page tells the request is closed.
	do(t, ctx, "reopen", chromedp.Navigate(p.firmad+"/sign/"+id), chromedp.WaitVisible(chromedp.CSS("#final")))
	if pr := layoutProblems(t, ctx); len(pr) > 0 {
		t.Errorf("final page: %s", strings.Join(pr, "; "))
	}
	screenshot(t, ctx, "final-rejected-desktop")
}

// verifyWithOpenSSL checks the signer chain and every signature with
// openssl: pkeyutl for raw signatures over the SHA-256, cms -verify for
// CAdES against the document.
func verifyWithOpenSSL(t *testing.T, s *stack.Stack, res *portalhttp.ResultJSON) {
	t.Helper()
	dir := t.TempDir()
	if len(res.CertificateChain) < 2 {
		t.Fatalf("chain of %d certificates", len(res.CertificateChain))
	}
	root := writePEM(t, filepath.Join(dir, "root.pem"), s.CA.Root().Raw)
	leaf := writePEM(t, filepath.Join(dir, "leaf.pem"), res.CertificateChain[0])
	untrusted := writePEM(t, filepath.Join(dir, "chain.pem"), res.CertificateChain[1:]...)
	openssl(t, ": OK", "verify", "-CAfile", root, "-untrusted", untrusted, leaf)
	pub := filepath.Join(dir, "pub.pem")
	openssl(t, "", "x509", "-in", leaf, "-pubkey", "-noout", "-out", pub)
	for i, d := range res.Documents {
		if d.Status != transaction.DocSigned || len(d.Signature) == 0 {
			t.Fatalf("document %d: %s %s %s", i, d.Status, d.ErrorCode, d.Error)
		}
		content := write(t, filepath.Join(dir, fmt.Sprintf("doc%d", i)), documents[i].content)
		sig := write(t, filepath.Join(dir, fmt.Sprintf("sig%d", i)), d.Signature)
		switch d.Format {
		case "raw":
			sum := sha256.Sum256(documents[i].content)
			if !bytes.Equal(d.Digest, sum[:]) {
				t.Fatalf("document %d: digest %x, want %x", i, d.Digest, sum)
			}
			dg := write(t, filepath.Join(dir, fmt.Sprintf("digest%d", i)), sum[:])
			openssl(t, "Signature Verified Successfully", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", dg, "-sigfile", sig)
			// And over the document itself, as a relying party would.
			openssl(t, "Verified OK", "dgst", "-sha256", "-verify", pub, "-signature", sig, content)
		case "cades":
			openssl(t, "Verification successful", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
				"-CAfile", root, "-purpose", "any", "-out", os.DevNull)
		default:
			t.Fatalf("document %d: format %s", i, d.Format)
		}
	}
}

func write(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writePEM(t *testing.T, path string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return write(t, path, b)
}

// openssl runs openssl and fails unless it succeeds and its output holds
// want.
func openssl(t *testing.T, want string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestBrowserOTPLocked: three wrong codes end the transaction; the page
// says so and its button takes the citizen to the portal's error URL.
func TestBrowserOTPLocked(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(45678901, "Elena", "Núñez Ortiz")
	p := newPortal(t, s, citizen)
	ctx := browser(t)

	id := signIn(t, ctx, p)
	code, _ := s.LastOTP(citizen)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i, want := range []string{"2", "1"} {
		// Mark the page, so that the wait below finds the error of the
		// page the post brings, not the one still showing.
		get(t, ctx, "mark page", chromedp.Evaluate[string](`document.body.dataset.old = "1"`))
		do(t, ctx, fmt.Sprint("wrong code ", i+1),
			chromedp.SendKeys(chromedp.CSS("#otp"), wrong),
			chromedp.Click(chromedp.CSS("#approve")),
			chromedp.WaitVisible(chromedp.CSS("body:not([data-old]) #page-error")))
		msg := get(t, ctx, "error", chromedp.Text(chromedp.CSS("#page-error")))
		if !strings.Contains(msg, want) {
			t.Fatalf("after wrong code %d: %q", i+1, msg)
		}
	}
	do(t, ctx, "third wrong code",
		chromedp.SendKeys(chromedp.CSS("#otp"), wrong),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#final")))
	final := get(t, ctx, "final text", chromedp.Text(chromedp.CSS("#final")))
	if !strings.Contains(final, "incorrect") && !strings.Contains(final, "wrong code") {
		t.Fatalf("final text %q", final)
	}
	screenshot(t, ctx, "otp-locked-desktop")
	do(t, ctx, "back to the portal", chromedp.Click(chromedp.CSS("#back")), chromedp.WaitVisible(chromedp.CSS("#failed")))
	p.mu.Lock()
	st := p.errors[id]
	p.mu.Unlock()
	if st == nil || st.State != transaction.StateFailed || st.ErrorCode != transaction.CodeOTPLocked {
		t.Fatalf("the portal sees %+v, want failed with otp_locked", st)
	}
}

// TestBrowserApprovesOverHTTPS runs the approval over TLS with Secure
// cookies, as in production: the browser must accept the __Host- cookies
// and send them back for the flow to work.
func TestBrowserApprovesOverHTTPS(t *testing.T) {
	s := stack.New(t, stack.Options{TLS: true, Web: func(o *web.Options) { o.Secure = true }})
	citizen := s.Advanced(56789012, "Raúl", "Ibáñez Soler")
	p := newPortal(t, s, citizen)
	ctx := browser(t, chromedp.IgnoreCertErrors)

	id := signIn(t, ctx, p)
	cookies := get(t, ctx, "cookies", chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{s.Server.URL + "/sign/" + id}})
		return r.Cookies, err
	}))
	var csrf, session bool
	for _, c := range cookies {
		if strings.HasPrefix(c.Name, "__Host-firma-") {
			csrf = csrf || c.Name == "__Host-firma-csrf"
			session = session || strings.HasPrefix(c.Name, "__Host-firma-s-")
			if !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" {
				t.Fatalf("cookie %s: secure %v httponly %v samesite %s path %s", c.Name, c.Secure, c.HTTPOnly, c.SameSite, c.Path)
			}
		}
	}
	if !csrf || !session {
		t.Fatalf("the browser holds %v, want the __Host- CSRF and session cookies", cookies)
	}
	code, _ := s.LastOTP(citizen)
	do(t, ctx, "approve", chromedp.SendKeys(chromedp.CSS("#otp"), code), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#done")))
	p.mu.Lock()
	res := p.results[id]
	p.mu.Unlock()
	if res == nil || res.State != transaction.StateDone {
		t.Fatalf("result %+v", res)
	}
	verifyWithOpenSSL(t, s, res)
}
