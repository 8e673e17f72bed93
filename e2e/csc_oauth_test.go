package e2e_test

// An outside-style CSC v2.2 client, written from the specification (CSC
// API v2.2 sections 8 and 11, RFC 6749, 7636, 9126, 9396) and sharing no
// code with the server: plain net/http, JSON and forms. The server side is
// e2e/stack with the OAuth 2.0 authorisation server on.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/tsa"
)

const (
	oidSHA256   = "2.16.840.1.101.3.4.2.1"
	oidECDSA256 = "1.2.840.10045.4.3.2"
)

// cscClient is the relying party's CSC client: a registered portal with
// its client ID (the portal ID), client secret (the API key) and the
// redirect URI it registered.
type cscClient struct {
	t        *testing.T
	base     string // the CSC API base URI, .../csc/v2
	oauth2   string // info's oauth2
	id, key  string
	redirect string
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

func (c *cscClient) do(req *http.Request) reply {
	c.t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			c.t.Fatalf("%s: not JSON: %s", req.URL.Path, raw)
		}
	}
	return r
}

// call posts a CSC method as JSON with a bearer token (API key or access
// token).
func (c *cscClient) call(method, bearer string, body any) reply {
	c.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, c.base+"/"+method, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return c.do(req)
}

// form posts an OAuth endpoint with HTTP Basic client authentication
// (RFC 6749 2.3.1: id and secret form-encoded first).
func (c *cscClient) form(endpoint, id, secret string, v url.Values) reply {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.oauth2+"/oauth2/"+endpoint, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return c.do(req)
}

// pkce returns a verifier and its S256 challenge (RFC 7636 4.1, 4.2).
func pkce(t *testing.T) (string, string) {
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

type doc struct {
	label string
	hash  []byte
}

func docs(names ...string) []doc {
	var out []doc
	for _, n := range names {
		h := sha256.Sum256([]byte("contenido de " + n))
		out = append(out, doc{label: n, hash: h[:]})
	}
	return out
}

// details is an RFC 9396 authorization_details of the CSC credential type.
func details(credentialID string, ds []doc) string {
	var dd []map[string]string
	for _, d := range ds {
		dd = append(dd, map[string]string{"hash": base64.StdEncoding.EncodeToString(d.hash), "label": d.label})
	}
	b, _ := json.Marshal([]map[string]any{{"type": "credential", "credentialID": credentialID, "documentDigests": dd,
		"hashAlgorithmOID": oidSHA256, "numSignatures": len(ds)}})
	return string(b)
}

// push sends a pushed authorisation request (RFC 9126) and returns the
// request_uri.
func (c *cscClient) push(v url.Values) reply {
	c.t.Helper()
	return c.form("pushed_authorize", c.id, c.key, v)
}

func (c *cscClient) pushed(credentialID string, ds []doc, challenge, state string) string {
	c.t.Helper()
	r := c.push(url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "state": {state}, "authorization_details": {details(credentialID, ds)}})
	if r.status != http.StatusCreated {
		c.t.Fatalf("PAR: %d %s", r.status, r.raw)
	}
	cscConforms(c.t, "oauth2_pushed_authorize", r.raw)
	return r.str("request_uri")
}

func (c *cscClient) authorizeURL(requestURI string) string {
	return c.oauth2 + "/oauth2/authorize?" + url.Values{"client_id": {c.id}, "request_uri": {requestURI}}.Encode()
}

func (c *cscClient) token(code, verifier string) reply {
	c.t.Helper()
	return c.form("token", c.id, c.key, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect},
		"code_verifier": {verifier}})
}

func (c *cscClient) signHash(bearer, credentialID string, hashes ...[]byte) reply {
	c.t.Helper()
	var b64 []string
	for _, h := range hashes {
		b64 = append(b64, base64.StdEncoding.EncodeToString(h))
	}
	return c.call("signatures/signHash", bearer, map[string]any{"credentialID": credentialID, "hashes": b64,
		"hashAlgorithmOID": oidSHA256, "signAlgo": oidECDSA256})
}

// wantErr fails unless r is the OAuth/CSC error form with the status and
// error code.
func wantErr(t *testing.T, what string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("%s: got %d %s, want %d %s", what, r.status, r.raw, status, code)
	}
	cscConforms(t, "error", r.raw)
}

// callback is the client's redirect endpoint: it records what the
// authorisation server sent the browser back with.
type callback struct {
	mu   sync.Mutex
	last url.Values
}

func (cb *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cb.mu.Lock()
	cb.last = r.URL.Query()
	cb.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	fmt.Fprint(w, `<!DOCTYPE html><title>client</title><p id="back">vuelta al cliente</p>`)
}

func (cb *callback) got() url.Values {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.last
}

// oauthWorld is the server and the clients of these tests.
type oauthWorld struct {
	s       *stack.Stack
	cb      *callback
	a, b    *cscClient // two portals
	citizen string
	cred    string
	clock   *testClock
}

type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }

func newOAuthWorld(t *testing.T) *oauthWorld { return newOAuthWorldWith(t, nil) }

// newOAuthWorldWith also tunes the CSC service.
func newOAuthWorldWith(t *testing.T, tune func(*csc.Options)) *oauthWorld {
	w := &oauthWorld{cb: &callback{}, clock: &testClock{}}
	w.s = stack.New(t, stack.Options{OAuth: true,
		CSC: func(o *csc.Options) {
			o.Clock = w.clock.Now
			if tune != nil {
				tune(o)
			}
		},
		OAuthOptions: func(o *oauth.Options) { o.Clock = w.clock.Now },
		Mux:          func(s *stack.Stack, mux *http.ServeMux) { mux.Handle("/client/cb", w.cb) }})
	w.citizen = w.s.Advanced(31415926, "Lucía", "García Pérez")
	w.cred = w.s.Certificate(w.citizen).ID
	base := w.s.Server.URL + "/csc/v2"
	pa, ka := w.s.Portal("Ayuntamiento de Prueba", w.s.Server.URL+"/client/cb")
	pb, kb := w.s.Portal("Otra Sede", w.s.Server.URL+"/client/cb-b")
	w.a = &cscClient{t: t, base: base, id: pa.ID, key: ka, redirect: w.s.Server.URL + "/client/cb"}
	w.b = &cscClient{t: t, base: base, id: pb.ID, key: kb, redirect: w.s.Server.URL + "/client/cb-b"}
	// info tells the client where the authorisation server is.
	info := w.a.call("info", "", map[string]any{})
	types, _ := info.body["authType"].([]any)
	if info.status != 200 || !slices.Contains(types, any("oauth2code")) || info.str("oauth2") == "" {
		t.Fatalf("info: %s", info.raw)
	}
	cscConforms(t, "info", info.raw)
	w.a.oauth2, w.b.oauth2 = info.str("oauth2"), info.str("oauth2")
	return w
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// httpCitizen drives the consent page over plain HTTP, as a browser
// without scripts does (the page has none): cheaper than Chromium for the
// refusal cases; the main flow uses Chromium.
type httpCitizen struct {
	t    *testing.T
	base string
	c    *http.Client
	page string // path of the consent page
}

func newHTTPCitizen(t *testing.T, base string) *httpCitizen {
	jar, _ := cookiejar.New(nil)
	return &httpCitizen{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (h *httpCitizen) get(u string) (int, string, string) {
	h.t.Helper()
	resp, err := h.c.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// open follows authorize to the consent page.
func (h *httpCitizen) open(authorizeURL string) (int, string) {
	h.t.Helper()
	st, body, loc := h.get(authorizeURL)
	if st != http.StatusFound {
		return st, body
	}
	u, _ := url.Parse(loc)
	h.page = u.Path
	st, body, _ = h.get(h.base + h.page)
	return st, body
}

func (h *httpCitizen) post(step string, v url.Values) (int, string, string) {
	h.t.Helper()
	_, page, _ := h.get(h.base + h.page)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		h.t.Fatalf("no form on the consent page:\n%s", page)
	}
	v.Set("csrf", m[1])
	req, _ := http.NewRequest(http.MethodPost, h.base+h.page+"/"+step, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.base)
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// approve signs in and approves with the SMS code; it returns the
// authorisation code from the redirect.
func (w *oauthWorld) approve(t *testing.T, c *cscClient, ds []doc, challenge string) string {
	t.Helper()
	h := newHTTPCitizen(t, w.s.Server.URL)
	if st, body := h.open(c.authorizeURL(c.pushed(w.cred, ds, challenge, "st-1"))); st != http.StatusOK {
		t.Fatalf("consent page: %d %s", st, body)
	}
	if st, body, _ := h.post("login", url.Values{"citizen": {w.citizen}, "password": {stack.Password}}); st != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", st, body)
	}
	code, _ := w.s.LastOTP(w.citizen)
	st, body, loc := h.post("approve", url.Values{"otp": {code}})
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, c.redirect+"?") {
		t.Fatalf("approve: %d %s %s", st, loc, body)
	}
	u, _ := url.Parse(loc)
	if u.Query().Get("state") != "st-1" || u.Query().Get("code") == "" {
		t.Fatalf("redirect %s", loc)
	}
	w.clock.Add(31 * time.Second) // past the SMS resend gap for the next one
	return u.Query().Get("code")
}

// TestCSCOAuthFlow: info -> credentials/list -> PAR -> authorize (the
// citizen in headless Chromium, the SMS code from the outbox) -> token ->
// credentials/list and credentials/info with the token -> signHash, each
// signature checked with openssl. Cost: one Chromium start (~2 s).
func TestCSCOAuthFlow(t *testing.T) {
	w := newOAuthWorld(t)
	c := w.a
	list := c.call("credentials/list", c.key, map[string]any{"userID": w.citizen})
	ids, _ := list.body["credentialIDs"].([]any)
	if list.status != 200 || len(ids) != 1 || ids[0] != w.cred {
		t.Fatalf("credentials/list: %s", list.raw)
	}
	// Four documents: two digests for signHash, one for a CAdES signature
	// from signDoc's documentDigests, and a PDF signed whole as PAdES by
	// signDoc's documents (its digest is of the whole file).
	ds := docs("Contrato de arrendamiento.pdf", "Anexo I - inventario.pdf")
	cadesDoc := []byte("Acta de la junta de propietarios, 3 de diciembre\n")
	pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	cadesSum, pdfSum := sha256.Sum256(cadesDoc), sha256.Sum256(pdf)
	all := append(slices.Clone(ds), doc{label: "Acta.txt", hash: cadesSum[:]}, doc{label: "Escritura.pdf", hash: pdfSum[:]})
	verifier, challenge := pkce(t)
	requestURI := c.pushed(w.cred, all, challenge, "xyz-state")

	ctx := browser(t)
	do(t, ctx, "open authorize", chromedp.Navigate(c.authorizeURL(requestURI)), chromedp.WaitVisible(chromedp.CSS("#citizen")))
	page := get(t, ctx, "consent page", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"Ayuntamiento de Prueba", ds[0].label, ds[1].label, strings.ToUpper(fmt.Sprintf("%x", ds[0].hash))} {
		if !strings.Contains(page, want) {
			t.Fatalf("the consent page does not show %q:\n%s", want, page)
		}
	}
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#citizen"), w.citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	if subject := get(t, ctx, "certificate", chromedp.Text(chromedp.CSS("#cert-subject"))); !strings.Contains(subject, "GARCÍA PÉREZ") {
		t.Fatalf("certificate shown: %q", subject)
	}
	// The page works on a phone as the approval page does.
	do(t, ctx, "phone", phone())
	if p := layoutProblems(t, ctx); len(p) > 0 {
		t.Fatalf("consent page on a phone: %v", p)
	}
	screenshot(t, ctx, "csc-consent-phone")
	do(t, ctx, "desktop", desktop())
	code, sms := w.s.LastOTP(w.citizen)
	if !strings.Contains(sms, "Ayuntamiento de Prueba") {
		t.Fatalf("the SMS does not name the portal: %q", sms)
	}
	do(t, ctx, "approve", chromedp.SendKeys(chromedp.CSS("#otp"), code), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#back")))
	back := w.cb.got()
	if back.Get("state") != "xyz-state" || back.Get("code") == "" {
		t.Fatalf("redirect back: %v", back)
	}

	tok := c.token(back.Get("code"), verifier)
	if tok.status != 200 || tok.str("token_type") != "Bearer" || tok.str("access_token") == "" || tok.body["expires_in"] == nil ||
		tok.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %s", tok.status, tok.raw)
	}
	if _, ok := tok.body["authorization_details"].([]any); !ok {
		t.Fatalf("token answer without authorization_details: %s", tok.raw)
	}
	cscConforms(t, "oauth2_token", tok.raw)
	at := tok.str("access_token")

	list = c.call("credentials/list", at, map[string]any{"credentialInfo": true})
	ids, _ = list.body["credentialIDs"].([]any)
	if list.status != 200 || len(ids) != 1 || ids[0] != w.cred {
		t.Fatalf("credentials/list with the token: %s", list.raw)
	}
	cscConforms(t, "credentials_list", list.raw)
	info := c.call("credentials/info", at, map[string]any{"credentialID": w.cred, "certInfo": true, "certificates": "chain"})
	auth, _ := info.body["auth"].(map[string]any)
	if info.status != 200 || auth["mode"] != "oauth2code" {
		t.Fatalf("credentials/info: %s", info.raw)
	}
	cscConforms(t, "credentials_info", info.raw)
	sig := c.signHash(at, w.cred, ds[0].hash, ds[1].hash)
	sigs, _ := sig.body["signatures"].([]any)
	if sig.status != 200 || len(sigs) != 2 {
		t.Fatalf("signHash: %d %s", sig.status, sig.raw)
	}
	cscConforms(t, "signatures_signHash", sig.raw)
	certs, _ := info.body["cert"].(map[string]any)["certificates"].([]any)
	opensslVerify(t, certs[0].(string), ds, sigs)

	sd := c.call("signatures/signDoc", at, map[string]any{"credentialID": w.cred,
		"documentDigests": []map[string]any{{"hashes": []string{base64.StdEncoding.EncodeToString(cadesSum[:])}, "hashAlgorithmOID": oidSHA256,
			"signature_format": "C", "conformance_level": "Ades-B-B", "signAlgo": oidECDSA256, "signed_envelope_property": "Detached"}},
		"documents": []map[string]any{{"document": base64.StdEncoding.EncodeToString(pdf), "signature_format": "P",
			"conformance_level": "Ades-B-B", "signAlgo": oidECDSA256}}})
	objs, _ := sd.body["SignatureObject"].([]any)
	signed, _ := sd.body["DocumentWithSignature"].([]any)
	if sd.status != 200 || len(objs) != 1 || len(signed) != 1 {
		t.Fatalf("signDoc: %d %s", sd.status, sd.raw)
	}
	cscConforms(t, "signatures_signDoc", sd.raw)
	var chain []string
	for _, x := range certs[1:] {
		chain = append(chain, x.(string))
	}
	checkCAdES(t, chain, cadesDoc, objs[0].(string))
	checkPAdES(t, chain, pdf, signed[0].(string))
	// Every authorised digest is spent now.
	wantErr(t, "signDoc again", c.call("signatures/signDoc", at, map[string]any{"credentialID": w.cred,
		"documentDigests": []map[string]any{{"hashes": []string{base64.StdEncoding.EncodeToString(cadesSum[:])}, "hashAlgorithmOID": oidSHA256,
			"signature_format": "C", "signAlgo": oidECDSA256}}}), 400, "invalid_request")
}

// caFile writes the CA certificates (base64 DER) as one PEM file.
func caFile(t *testing.T, dir string, chain []string) string {
	t.Helper()
	var buf bytes.Buffer
	for _, c := range chain {
		der, _ := base64.StdEncoding.DecodeString(c)
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	p := filepath.Join(dir, "ca.pem")
	os.WriteFile(p, buf.Bytes(), 0o600)
	return p
}

// checkCAdES verifies a detached CMS over content with openssl cms, up to
// the CA that credentials/info returned.
func checkCAdES(t *testing.T, chain []string, content []byte, sigB64 string) {
	t.Helper()
	dir := t.TempDir()
	sig, _ := base64.StdEncoding.DecodeString(sigB64)
	cf, sf := filepath.Join(dir, "content"), filepath.Join(dir, "sig.p7s")
	os.WriteFile(cf, content, 0o600)
	os.WriteFile(sf, sig, 0o600)
	out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-content", cf, "-inform", "DER", "-in", sf,
		"-CAfile", caFile(t, dir, chain), "-purpose", "any", "-out", os.DevNull).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
}

// checkPAdES checks the signed PDF with qpdf and pdfsig, trusting the CA
// root that credentials/info returned.
func checkPAdES(t *testing.T, chain []string, original []byte, signedB64 string) {
	t.Helper()
	dir := t.TempDir()
	signed, _ := base64.StdEncoding.DecodeString(signedB64)
	if !bytes.HasPrefix(signed, original) {
		t.Fatal("the signed PDF is not an incremental update of the original")
	}
	p := filepath.Join(dir, "signed.pdf")
	os.WriteFile(p, signed, 0o600)
	if out, err := exec.Command("qpdf", "--check", p).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
	nss := filepath.Join(dir, "nss")
	os.Mkdir(nss, 0o700)
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+nss, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "root.pem")
	der, _ := base64.StdEncoding.DecodeString(chain[len(chain)-1])
	os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	if out, err := exec.Command("certutil", "-A", "-d", "sql:"+nss, "-n", "root", "-t", "CT,C,C", "-i", root).CombinedOutput(); err != nil {
		t.Fatalf("certutil -A: %v\n%s", err, out)
	}
	out, _ := exec.Command("pdfsig", "-nssdir", "sql:"+nss, p).CombinedOutput()
	if !strings.Contains(string(out), "Signature Validation: Signature is Valid.") {
		t.Fatalf("pdfsig:\n%s", out)
	}
}

// opensslVerify checks each raw ECDSA signature over its digest with
// openssl pkeyutl and the credential's certificate.
func opensslVerify(t *testing.T, certB64 string, ds []doc, sigs []any) {
	t.Helper()
	dir := t.TempDir()
	der, _ := base64.StdEncoding.DecodeString(certB64)
	certPEM, pubPEM := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "pub.pem")
	os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	if out, err := exec.Command("openssl", "x509", "-in", certPEM, "-pubkey", "-noout", "-out", pubPEM).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for i, d := range ds {
		sig, _ := base64.StdEncoding.DecodeString(sigs[i].(string))
		h, s := filepath.Join(dir, fmt.Sprint("h", i)), filepath.Join(dir, fmt.Sprint("s", i))
		os.WriteFile(h, d.hash, 0o600)
		os.WriteFile(s, sig, 0o600)
		out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pubPEM, "-in", h, "-sigfile", s).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Fatalf("openssl pkeyutl -verify of signature %d: %v\n%s", i, err, out)
		}
	}
}

// TestCSCOAuthRefusals: each refusal the specification and the issue
// list, in the OAuth/CSC error form or on the consent page, real end to
// end over HTTP (the citizen's browser is plain HTTP here; the page has no
// script). Cost: about 20 password checks and SMS codes, no browser.
func TestCSCOAuthRefusals(t *testing.T) {
	w := newOAuthWorld(t)
	a, b := w.a, w.b
	ds := docs("Solicitud.pdf", "Justificante.pdf")
	base := url.Values{"response_type": {"code"}, "client_id": {a.id}, "redirect_uri": {a.redirect}, "state": {"s"},
		"authorization_details": {details(w.cred, ds)}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = slices.Clone(vs)
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				out.Del(kv[i])
			} else {
				out.Set(kv[i], kv[i+1])
			}
		}
		return out
	}
	_, challenge := pkce(t)

	t.Run("PKCE missing", func(t *testing.T) {
		wantErr(t, "PAR", a.push(base), 400, "invalid_request")
	})
	t.Run("PKCE plain", func(t *testing.T) {
		wantErr(t, "PAR", a.push(with(base, "code_challenge", challenge, "code_challenge_method", "plain")), 400, "invalid_request")
	})
	t.Run("redirect URI not registered", func(t *testing.T) {
		wantErr(t, "PAR", a.push(with(base, "code_challenge", challenge, "code_challenge_method", "S256",
			"redirect_uri", a.redirect+"/../evil")), 400, "invalid_request")
	})
	t.Run("wrong client secret", func(t *testing.T) {
		wantErr(t, "PAR", a.form("pushed_authorize", a.id, b.key, with(base, "code_challenge", challenge, "code_challenge_method", "S256")),
			401, "invalid_client")
	})
	t.Run("authorization_details tampered between PAR and authorize", func(t *testing.T) {
		uri := a.pushed(w.cred, ds, challenge, "s")
		h := newHTTPCitizen(t, w.s.Server.URL)
		tampered := a.authorizeURL(uri) + "&" + url.Values{"authorization_details": {details(w.cred, docs("Otro documento.pdf"))}}.Encode()
		st, body, _ := h.get(tampered)
		if st != 400 || !strings.Contains(body, "invalid_request") || !strings.Contains(body, "authorization_details") {
			t.Fatalf("tampered authorize: %d %s", st, body)
		}
	})

	// One approval serves the checks of the code exchange.
	verifier, challenge2 := pkce(t)
	code := w.approve(t, a, ds, challenge2)
	t.Run("PKCE wrong verifier", func(t *testing.T) {
		other, _ := pkce(t)
		wantErr(t, "token", a.token(code, other), 400, "invalid_grant")
	})
	t.Run("PKCE verifier missing", func(t *testing.T) {
		wantErr(t, "token", a.form("token", a.id, a.key, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {a.redirect}}), 400, "invalid_grant")
	})
	t.Run("redirect URI altered at the token endpoint", func(t *testing.T) {
		wantErr(t, "token", a.form("token", a.id, a.key, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {a.redirect + "?x=1"}, "code_verifier": {verifier}}), 400, "invalid_grant")
	})
	t.Run("code used by another client", func(t *testing.T) {
		wantErr(t, "token", b.form("token", b.id, b.key, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {a.redirect}, "code_verifier": {verifier}}), 400, "invalid_grant")
	})
	tok := a.token(code, verifier)
	if tok.status != 200 {
		t.Fatalf("token after the refused tries: %s", tok.raw)
	}
	at := tok.str("access_token")
	t.Run("code replayed", func(t *testing.T) {
		wantErr(t, "token", a.token(code, verifier), 400, "invalid_grant")
	})

	// A second credential, of another citizen.
	other := w.s.Advanced(27182818, "Pablo", "Ruiz Sanz")
	otherCred := w.s.Certificate(other).ID
	t.Run("token for credential X on credential Y", func(t *testing.T) {
		wantErr(t, "signHash", a.signHash(at, otherCred, ds[0].hash), 400, "invalid_request")
	})
	t.Run("token for digest A on digest B", func(t *testing.T) {
		wantErr(t, "signHash", a.signHash(at, w.cred, docs("No autorizado.pdf")[0].hash), 400, "invalid_request")
	})
	t.Run("token of another client", func(t *testing.T) {
		// The token names its client: b's API key with a's token as SAD.
		r := b.call("signatures/signHash", b.key, map[string]any{"credentialID": w.cred, "SAD": at,
			"hashes": []string{base64.StdEncoding.EncodeToString(ds[0].hash)}, "hashAlgorithmOID": oidSHA256, "signAlgo": oidECDSA256})
		wantErr(t, "signHash", r, 400, "invalid_request")
	})
	t.Run("token reused past numSignatures", func(t *testing.T) {
		if r := a.signHash(at, w.cred, ds[0].hash); r.status != 200 {
			t.Fatalf("first use: %s", r.raw)
		}
		wantErr(t, "signHash again", a.signHash(at, w.cred, ds[0].hash), 400, "invalid_request")
	})
	t.Run("revoked token", func(t *testing.T) {
		if r := a.form("revoke", a.id, a.key, url.Values{"token": {at}}); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		wantErr(t, "signHash after revoke", a.signHash(at, w.cred, ds[1].hash), 400, "invalid_request")
	})
	t.Run("expired token", func(t *testing.T) {
		v, ch := pkce(t)
		at := a.token(w.approve(t, a, ds, ch), v).str("access_token")
		w.clock.Add(6 * time.Minute) // the SAD lives 5
		wantErr(t, "signHash", a.signHash(at, w.cred, ds[0].hash), 401, "invalid_token")
	})
	t.Run("expired code", func(t *testing.T) {
		v, ch := pkce(t)
		code := w.approve(t, a, ds, ch)
		w.clock.Add(2 * time.Minute) // the code lives 1
		wantErr(t, "token", a.token(code, v), 400, "invalid_grant")
	})
	t.Run("citizen rejects", func(t *testing.T) {
		w.clock.Add(time.Minute)
		h := newHTTPCitizen(t, w.s.Server.URL)
		h.open(a.authorizeURL(a.pushed(w.cred, ds, challenge, "rj")))
		h.post("login", url.Values{"citizen": {w.citizen}, "password": {stack.Password}})
		st, _, loc := h.post("reject", url.Values{})
		u, _ := url.Parse(loc)
		if st != http.StatusSeeOther || !strings.HasPrefix(loc, a.redirect+"?") || u.Query().Get("error") != "access_denied" ||
			u.Query().Get("state") != "rj" || u.Query().Has("code") {
			t.Fatalf("reject: %d %s", st, loc)
		}
		// The request is over: the page offers nothing more.
		if _, body, _ := h.get(h.base + h.page); !strings.Contains(body, "terminado") || strings.Contains(body, `id="approve"`) {
			t.Fatalf("page after reject:\n%s", body)
		}
	})
	t.Run("citizen of another DNI signs in", func(t *testing.T) {
		w.clock.Add(time.Minute)
		h := newHTTPCitizen(t, w.s.Server.URL)
		h.open(a.authorizeURL(a.pushed(w.cred, ds, challenge, "x")))
		sent := w.s.SMSCount(other)
		st, body, _ := h.post("login", url.Values{"citizen": {other}, "password": {stack.Password}})
		if st != http.StatusForbidden || !strings.Contains(body, "another citizen") || w.s.SMSCount(other) != sent {
			t.Fatalf("another citizen: %d, SMS %d -> %d\n%s", st, sent, w.s.SMSCount(other), body)
		}
	})
	t.Run("revoked certificate", func(t *testing.T) {
		third := w.s.Advanced(16180339, "Elena", "Mora Gil")
		cred := w.s.Certificate(third).ID
		v, ch := pkce(t)
		h := newHTTPCitizen(t, w.s.Server.URL)
		h.open(a.authorizeURL(a.pushed(cred, ds, ch, "rv")))
		h.post("login", url.Values{"citizen": {third}, "password": {stack.Password}})
		otp, _ := w.s.LastOTP(third)
		_, _, loc := h.post("approve", url.Values{"otp": {otp}})
		u, _ := url.Parse(loc)
		if _, err := w.s.CA.Revoke(w.s.Ctx, cred, 1); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "token for a revoked certificate", a.token(u.Query().Get("code"), v), 403, "access_denied")
		// And no new request gets past sign-in.
		h = newHTTPCitizen(t, w.s.Server.URL)
		h.open(a.authorizeURL(a.pushed(cred, ds, ch, "rv2")))
		if st, body, _ := h.post("login", url.Values{"citizen": {third}, "password": {stack.Password}}); st != http.StatusForbidden || !strings.Contains(body, "revoked") {
			t.Fatalf("sign-in with a revoked certificate: %d\n%s", st, body)
		}
	})
	t.Run("three wrong SMS codes lock the citizen for every client", func(t *testing.T) {
		w.clock.Add(time.Minute)
		h := newHTTPCitizen(t, w.s.Server.URL)
		h.open(a.authorizeURL(a.pushed(w.cred, ds, challenge, "lk")))
		h.post("login", url.Values{"citizen": {w.citizen}, "password": {stack.Password}})
		right, _ := w.s.LastOTP(w.citizen)
		wrong := "000000"
		if right == wrong {
			wrong = "999999"
		}
		var body string
		for range 3 {
			_, body, _ = h.post("approve", url.Values{"otp": {wrong}})
		}
		if !strings.Contains(body, "locked") {
			t.Fatalf("after three wrong codes:\n%s", body)
		}
		// Not even the right code now.
		if st, _, _ := h.post("approve", url.Values{"otp": {right}}); st == http.StatusSeeOther {
			t.Fatal("the right code passed the lock")
		}
		// Another client, on the explicit path: locked too.
		wantErr(t, "explicit sendOTP by another portal", b.call("credentials/sendOTP", b.key, map[string]any{"credentialID": w.cred}), 403, "access_denied")
		// Another client's consent request: signed in, but no code is sent.
		hb := newHTTPCitizen(t, w.s.Server.URL)
		_, chb := pkce(t)
		hb.open(b.authorizeURL(b.pushed(w.cred, ds, chb, "lkb")))
		sent := w.s.SMSCount(w.citizen)
		if _, body, _ := hb.post("login", url.Values{"citizen": {w.citizen}, "password": {stack.Password}}); !strings.Contains(body, "locked") || w.s.SMSCount(w.citizen) != sent {
			t.Fatalf("another client's sign-in while locked sent a code or said nothing:\n%s", body)
		}
	})
}

// TestCSCOAuthScopeCredential: the plain form of CSC v2.2 8.3.2
// (scope=credential with credentialID, numSignatures, comma-separated
// base64url hashes and hashAlgorithmOID), sent whole on the front channel
// without PAR; and the authorization_details form sent the same way.
func TestCSCOAuthScopeCredential(t *testing.T) {
	w := newOAuthWorld(t)
	c := w.a
	ds := docs("Modelo 100.pdf", "Certificado de empadronamiento.pdf")
	var b64 []string
	for _, d := range ds {
		b64 = append(b64, base64.RawURLEncoding.EncodeToString(d.hash))
	}
	for _, form := range []url.Values{
		{"scope": {"credential"}, "credentialID": {w.cred}, "numSignatures": {"2"}, "hashes": {strings.Join(b64, ",")}, "hashAlgorithmOID": {oidSHA256}},
		{"authorization_details": {details(w.cred, ds)}},
	} {
		verifier, challenge := pkce(t)
		q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect}, "code_challenge": {challenge},
			"code_challenge_method": {"S256"}, "state": {"front"}}
		for k, v := range form {
			q[k] = v
		}
		h := newHTTPCitizen(t, w.s.Server.URL)
		if st, body := h.open(c.oauth2 + "/oauth2/authorize?" + q.Encode()); st != 200 || !strings.Contains(body, ds[1].label) && form.Has("authorization_details") {
			t.Fatalf("consent page: %d\n%s", st, body)
		}
		h.post("login", url.Values{"citizen": {w.citizen}, "password": {stack.Password}})
		otp, _ := w.s.LastOTP(w.citizen)
		st, _, loc := h.post("approve", url.Values{"otp": {otp}})
		u, _ := url.Parse(loc)
		if st != http.StatusSeeOther || u.Query().Get("state") != "front" {
			t.Fatalf("approve: %d %s", st, loc)
		}
		tok := c.token(u.Query().Get("code"), verifier)
		if tok.status != 200 {
			t.Fatalf("token: %s", tok.raw)
		}
		cscConforms(t, "oauth2_token", tok.raw)
		if form.Has("scope") && tok.str("scope") != "credential" {
			t.Fatalf("token scope: %s", tok.raw)
		}
		if r := c.signHash(tok.str("access_token"), w.cred, ds[0].hash, ds[1].hash); r.status != 200 {
			t.Fatalf("signHash: %s", r.raw)
		}
		w.clock.Add(31 * time.Second)
	}
	// The plain form with a count that does not match its hashes.
	_, challenge := pkce(t)
	wantErr(t, "numSignatures mismatch", c.push(url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"credential"}, "credentialID": {w.cred},
		"numSignatures": {"3"}, "hashes": {strings.Join(b64, ",")}, "hashAlgorithmOID": {oidSHA256}}), 400, "invalid_request")
	// A scope this server does not offer.
	wantErr(t, "scope service", c.push(url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"service"}}), 400, "invalid_scope")
}

// TestCSCOAuthClientCredentials: a service-scope token (client_credentials)
// stands for the client as its API key does: it lists a citizen's
// credentials, but signs nothing, and ends when revoked.
func TestCSCOAuthClientCredentials(t *testing.T) {
	w := newOAuthWorld(t)
	c := w.a
	tok := c.form("token", c.id, c.key, url.Values{"grant_type": {"client_credentials"}, "scope": {"service"}})
	if tok.status != 200 || tok.str("scope") != "service" {
		t.Fatalf("client_credentials: %d %s", tok.status, tok.raw)
	}
	cscConforms(t, "oauth2_token", tok.raw)
	at := tok.str("access_token")
	list := c.call("credentials/list", at, map[string]any{"userID": w.citizen})
	if ids, _ := list.body["credentialIDs"].([]any); list.status != 200 || len(ids) != 1 {
		t.Fatalf("credentials/list with a service token: %s", list.raw)
	}
	wantErr(t, "signHash with a service token", c.signHash(at, w.cred, docs("x")[0].hash), 400, "invalid_request")
	wantErr(t, "credential scope by client_credentials", c.form("token", c.id, c.key,
		url.Values{"grant_type": {"client_credentials"}, "scope": {"credential"}}), 400, "invalid_scope")
	wantErr(t, "unknown grant", c.form("token", c.id, c.key, url.Values{"grant_type": {"password"}}), 400, "unsupported_grant_type")
	// Another client cannot revoke it; its own client can.
	w.b.form("revoke", w.b.id, w.b.key, url.Values{"token": {at}})
	if r := c.call("credentials/list", at, map[string]any{"userID": w.citizen}); r.status != 200 {
		t.Fatalf("revoked by another client: %s", r.raw)
	}
	if r := c.form("revoke", c.id, c.key, url.Values{"token": {at}}); r.status != 200 {
		t.Fatalf("revoke: %s", r.raw)
	}
	wantErr(t, "credentials/list after revoke", c.call("credentials/list", at, map[string]any{"userID": w.citizen}), 401, "invalid_token")
	// And it expires.
	at = c.form("token", c.id, c.key, url.Values{"grant_type": {"client_credentials"}}).str("access_token")
	w.clock.Add(11 * time.Minute)
	wantErr(t, "credentials/list after expiry", c.call("credentials/list", at, map[string]any{"userID": w.citizen}), 401, "invalid_token")
}

// TestCSCConsentPageRules: the consent page keeps the approval page's
// rules: posts need this browser's form token and our origin, the session
// is this browser's, and nothing but the registered redirect URI is ever
// the way back.
func TestCSCConsentPageRules(t *testing.T) {
	w := newOAuthWorld(t)
	c := w.a
	ds := docs("Padrón.pdf")
	_, challenge := pkce(t)
	h := newHTTPCitizen(t, w.s.Server.URL)
	if st, _ := h.open(c.authorizeURL(c.pushed(w.cred, ds, challenge, "r"))); st != 200 {
		t.Fatalf("consent page %d", st)
	}
	post := func(step string, v url.Values, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, h.base+h.page+"/"+step, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := h.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	login := url.Values{"citizen": {w.citizen}, "password": {stack.Password}}
	if st := post("login", login, h.base); st != http.StatusForbidden {
		t.Fatalf("login without a form token: %d", st)
	}
	_, page, _ := h.get(h.base + h.page)
	login.Set("csrf", csrfRE.FindStringSubmatch(page)[1])
	if st := post("login", login, "https://evil.example"); st != http.StatusForbidden {
		t.Fatalf("login from another origin: %d", st)
	}
	if n := w.s.SMSCount(w.citizen); n != 0 {
		t.Fatalf("%d SMS sent by refused posts", n)
	}
	if st, _, _ := h.post("login", url.Values{"citizen": {w.citizen}, "password": {stack.Password}}); st != http.StatusSeeOther {
		t.Fatalf("sign in: %d", st)
	}
	// Another browser with the same link is not signed in: it cannot
	// approve, nor reject.
	other := newHTTPCitizen(t, w.s.Server.URL)
	other.page = h.page
	_, page, _ = other.get(other.base + other.page)
	if strings.Contains(page, `id="approve"`) || strings.Contains(page, "cert-subject") {
		t.Fatal("another browser sees the signed-in step or the certificate")
	}
	// A wrong password: the registry's answer (its own throttle follows).
	if st, _, _ := other.post("login", url.Values{"citizen": {w.citizen}, "password": {"wrong password 1"}}); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	// An unknown request.
	if st, body, _ := h.get(h.base + "/sign/consent/nope"); st != http.StatusNotFound || !strings.Contains(body, "no existe") {
		t.Fatalf("unknown request: %d", st)
	}
}

// TestCSCSignDocRefusals: signDoc signs only what the citizen approved,
// in the formats info lists.
func TestCSCSignDocRefusals(t *testing.T) {
	w := newOAuthWorld(t)
	c := w.a
	pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pdf)
	verifier, challenge := pkce(t)
	at := c.token(w.approve(t, c, []doc{{label: "Escritura.pdf", hash: sum[:]}}, challenge), verifier).str("access_token")
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"a document not approved", map[string]any{"documents": []map[string]any{{"document": b64(append(slices.Clone(pdf), '\n')),
			"signature_format": "P", "signAlgo": oidECDSA256}}}},
		{"a level not offered", map[string]any{"documents": []map[string]any{{"document": b64(pdf), "signature_format": "P",
			"conformance_level": "Ades-B-LTA", "signAlgo": oidECDSA256}}}},
		{"XAdES", map[string]any{"documents": []map[string]any{{"document": b64(pdf), "signature_format": "X", "signAlgo": oidECDSA256}}}},
		{"PAdES of a digest", map[string]any{"documentDigests": []map[string]any{{"hashes": []string{b64(sum[:])},
			"hashAlgorithmOID": oidSHA256, "signature_format": "P", "signAlgo": oidECDSA256}}}},
		{"no signAlgo", map[string]any{"documents": []map[string]any{{"document": b64(pdf), "signature_format": "P"}}}},
		{"certification", map[string]any{"documents": []map[string]any{{"document": b64(pdf), "signature_format": "P",
			"signAlgo": oidECDSA256, "signed_envelope_property": "Certification"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["credentialID"] = w.cred
			wantErr(t, "signDoc", c.call("signatures/signDoc", at, tc.body), 400, "invalid_request")
		})
	}
	// Refused before anything was reserved: the approved PDF still signs.
	r := c.call("signatures/signDoc", at, map[string]any{"credentialID": w.cred, "documents": []map[string]any{{"document": b64(pdf),
		"signature_format": "P", "signAlgo": oidECDSA256}}})
	if signed, _ := r.body["DocumentWithSignature"].([]any); r.status != 200 || len(signed) != 1 {
		t.Fatalf("signDoc after the refusals: %s", r.raw)
	}
}

// TestCSCTimestampAndBT: signatures/timestamp returns an RFC 3161 token
// over the client's hash from the service's TSA (openssl ts -verify), and
// signDoc makes Ades-B-T when asked (the CMS carries a signature
// time-stamp). The TSA is package tsa's server on a software key.
func TestCSCTimestampAndBT(t *testing.T) {
	// A TSA on software keys (one process sees one set of SoftHSM2
	// tokens, the stack's), under its own root.
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CSC test TSA root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	root, _ := x509.ParseCertificate(der)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := tsa.IssueCertificate(root, rootKey, key.Public(), tsa.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var serial atomic.Int64
	srv, err := tsa.NewServer(tsa.ServerConfig{Signer: key, Cert: cert, Chain: []*x509.Certificate{root},
		Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Serials: serialFunc(func() *big.Int { return big.NewInt(serial.Add(1)) })})
	if err != nil {
		t.Fatal(err)
	}
	w := newOAuthWorldWith(t, func(o *csc.Options) { o.Timestamper = signer.TimestamperFunc(tsa.TokenDER(srv)) })
	c := w.a
	info := c.call("info", "", map[string]any{})
	methods, _ := info.body["methods"].([]any)
	levels, _ := info.body["conformance_levels"].([]any)
	if !slices.Contains(methods, any("signatures/timestamp")) || !slices.Contains(levels, any("Ades-B-T")) {
		t.Fatalf("info: %s", info.raw)
	}
	content := []byte("Documento con sello de tiempo\n")
	sum := sha256.Sum256(content)
	r := c.call("signatures/timestamp", c.key, map[string]any{"hash": base64.StdEncoding.EncodeToString(sum[:]), "hashAlgorithmOID": oidSHA256})
	if r.status != 200 || r.str("timestamp") == "" {
		t.Fatalf("timestamp: %d %s", r.status, r.raw)
	}
	dir := t.TempDir()
	tok, _ := base64.StdEncoding.DecodeString(r.str("timestamp"))
	tf := filepath.Join(dir, "token.der")
	os.WriteFile(tf, tok, 0o600)
	roots := filepath.Join(dir, "tsa.pem")
	os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o600)
	out, err := exec.Command("openssl", "ts", "-verify", "-digest", fmt.Sprintf("%x", sum), "-in", tf, "-token_in", "-CAfile", roots).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	wantErr(t, "timestamp with a nonce", c.call("signatures/timestamp", c.key, map[string]any{"hash": base64.StdEncoding.EncodeToString(sum[:]),
		"hashAlgorithmOID": oidSHA256, "nonce": "0a0b"}), 400, "invalid_request")

	// A CAdES-B-T from signDoc.
	verifier, challenge := pkce(t)
	at := c.token(w.approve(t, c, []doc{{label: "Con sello.txt", hash: sum[:]}}, challenge), verifier).str("access_token")
	sd := c.call("signatures/signDoc", at, map[string]any{"credentialID": w.cred, "documentDigests": []map[string]any{{
		"hashes": []string{base64.StdEncoding.EncodeToString(sum[:])}, "hashAlgorithmOID": oidSHA256, "signature_format": "C",
		"conformance_level": "Ades-B-T", "signAlgo": oidECDSA256}}})
	objs, _ := sd.body["SignatureObject"].([]any)
	if sd.status != 200 || len(objs) != 1 {
		t.Fatalf("signDoc B-T: %d %s", sd.status, sd.raw)
	}
	cms, _ := base64.StdEncoding.DecodeString(objs[0].(string))
	cf := filepath.Join(dir, "sig.p7s")
	os.WriteFile(cf, cms, 0o600)
	out, err = exec.Command("openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", cf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "id-smime-aa-timeStampToken") {
		t.Fatalf("the B-T signature has no signature time-stamp: %v\n%.2000s", err, out)
	}
	info2 := c.call("credentials/info", at, map[string]any{"credentialID": w.cred, "certificates": "chain"})
	certs, _ := info2.body["cert"].(map[string]any)["certificates"].([]any)
	var chain []string
	for _, x := range certs[1:] {
		chain = append(chain, x.(string))
	}
	checkCAdES(t, chain, content, objs[0].(string))
}

// serialFunc is a TSA serial source in memory.
type serialFunc func() *big.Int

func (f serialFunc) Next(context.Context) (*big.Int, error) { return f(), nil }
