package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/transaction"
)

// TestApprovalPageLayout opens the real page in Chromium in both
// languages, at desktop and phone width, before and after sign-in, and
// checks that nothing overflows the screen, every input has a label and
// every button is big enough to tap.
func TestApprovalPageLayout(t *testing.T) {
	s := stack.New(t, stack.Options{})
	p, _ := s.Portal("Dirección General de Tráfico", "https://sede.dgt.example/ok", "https://sede.dgt.example/error")
	citizen := s.Advanced(50123456, "María José", "Fernández de la Fuente")
	s.Certificate(citizen)
	c, err := s.Tx.Create(context.Background(), p, transaction.CreateRequest{CitizenID: citizen,
		OKURL: "https://sede.dgt.example/ok", ErrorURL: "https://sede.dgt.example/error",
		Documents: []transaction.DocumentInput{
			{Name: "Solicitud de duplicado del permiso de conducción — formulario oficial 2026 con nombre muy largo.pdf", Content: []byte(strings.Repeat("x", 183_000)), Format: "raw"},
			{Name: "Justificante de pago de la tasa 4.1.txt", Content: []byte("tasa 4.1 pagada"), Format: "raw"},
			{Name: "Declaración responsable.xml", Content: []byte("<declaracion/>"), Format: "raw"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	for _, lang := range []string{"es", "en"} {
		for _, width := range []string{"desktop", "phone"} {
			size := desktop()
			if width == "phone" {
				size = phone()
			}
			do(t, ctx, "open "+lang+" "+width, size, chromedp.Navigate(c.RedirectURL+"?lang="+lang), chromedp.WaitVisible(chromedp.CSS("#citizen")))
			h1 := get(t, ctx, "title", chromedp.Text(chromedp.CSS("h1")))
			want := map[string]string{"es": "Firma de documentos", "en": "Sign documents"}[lang]
			if h1 != want {
				t.Fatalf("%s: h1 %q, want %q", lang, h1, want)
			}
			if pr := layoutProblems(t, ctx); len(pr) > 0 {
				t.Errorf("login page, %s, %s: %s", lang, width, strings.Join(pr, "; "))
			}
			screenshot(t, ctx, "login-"+lang+"-"+width)
		}
	}
	// Sign in (in English, the last language chosen) and look at the code form.
	do(t, ctx, "sign in", desktop(),
		chromedp.SendKeys(chromedp.CSS("#citizen"), citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	for _, width := range []string{"desktop", "phone"} {
		size := desktop()
		if width == "phone" {
			size = phone()
		}
		do(t, ctx, "otp page "+width, size, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#otp")))
		if pr := layoutProblems(t, ctx); len(pr) > 0 {
			t.Errorf("code page, %s: %s", width, strings.Join(pr, "; "))
		}
		screenshot(t, ctx, "otp-en-"+width)
	}
	// A wrong code shows the tries left.
	do(t, ctx, "wrong code", desktop(), chromedp.SendKeys(chromedp.CSS("#otp"), "000001"), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#page-error")))
	msg := get(t, ctx, "error text", chromedp.Text(chromedp.CSS("#page-error")))
	if !strings.Contains(msg, "Wrong code") || !strings.Contains(msg, "2 tries left") {
		code, _ := s.LastOTP(citizen)
		if code != "000001" {
			t.Fatalf("error message %q", msg)
		}
	}
	screenshot(t, ctx, "otp-wrong-en-desktop")
}
