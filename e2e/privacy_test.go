package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/e2e/stack"
)

// TestBrowserPageNamesNoOneBeforeSignIn: whoever holds the link sees the
// portal, the documents and the masked DNI/NIE in a real browser, but not
// the citizen's name, DNI/NIE or certificate, and no way to reject; the
// signed-in citizen sees the certificate. One Chromium, one sign-in.
func TestBrowserPageNamesNoOneBeforeSignIn(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(45678901, "Ana", "Robles Vidal")
	if _, err := s.CA.EnsureCertificate(context.Background(), citizen); err != nil {
		t.Fatal(err)
	}
	p := newPortal(t, s, citizen)
	ctx := browser(t)
	do(t, ctx, "follow the portal to the approval page",
		chromedp.Navigate(p.url+"/start"),
		chromedp.WaitVisible(chromedp.CSS("#citizen")))
	page := get(t, ctx, "page text", chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(page, "****"+citizen[len(citizen)-4:]) || !strings.Contains(page, documents[0].name) {
		t.Fatalf("the page lacks the masked DNI/NIE or the documents:\n%s", page)
	}
	for _, leak := range []string{citizen, "Ana", "ANA", "Robles", "ROBLES"} {
		if strings.Contains(page, leak) {
			t.Errorf("the page before sign-in shows %q:\n%s", leak, page)
		}
	}
	if n := get(t, ctx, "certificate and reject", chromedp.Evaluate[int](
		`document.querySelectorAll("#cert-subject, #cert-serial, #reject").length`)); n != 0 {
		t.Fatalf("%d certificate fields or reject buttons before sign-in", n)
	}
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#citizen"), citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	if subject := get(t, ctx, "certificate", chromedp.Text(chromedp.CSS("#cert-subject"))); !strings.Contains(subject, citizen) {
		t.Fatalf("certificate subject after sign-in: %q", subject)
	}
	do(t, ctx, "the reject button", chromedp.WaitVisible(chromedp.CSS("#reject")))
}

// TestDocumentNamesRefused: names that would show as something else
// (bidi overrides) or cut (NUL, controls) are refused at the portal API,
// naming the field.
func TestDocumentNamesRefused(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(56789012, "Eva", "Soto Gil")
	p := newPortal(t, s, citizen)
	for _, name := range []string{"x\u202egpj.exe", "a\x00.pdf", "a\u2066b.pdf", "a\u0085b.pdf"} {
		req := portalhttp.CreateJSON{SubjectID: citizen, OKURL: p.url + "/ok", ErrorURL: p.url + "/error",
			Documents: []portalhttp.DocumentJSON{{Name: name, Format: "raw", MediaType: "text/plain", Content: []byte("x")}}}
		var c portalhttp.CreatedJSON
		err := p.api(http.MethodPost, "/api/v1/transactions", req, &c)
		if err == nil || !strings.Contains(err.Error(), ": 400 ") || !strings.Contains(err.Error(), "documents[0].name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
}
