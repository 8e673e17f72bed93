package e2e_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/e2e/stack"
)

// TestBrowserSeesKeyUse: after approving in the browser, the citizen opens
// /me from the approval page's link target, signs in and finds the
// signatures: portal and document names; then signs out.
func TestBrowserSeesKeyUse(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(34567890, "Lucía", "García Pérez")
	p := newPortal(t, s, citizen)
	ctx := browser(t)

	signIn(t, ctx, p)
	code, _ := s.LastOTP(citizen)
	do(t, ctx, "approve",
		chromedp.SendKeys(chromedp.CSS("#otp"), code),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#done")))

	do(t, ctx, "open /me on a phone", phone(),
		chromedp.Navigate(p.firmad+"/me"),
		chromedp.WaitVisible(chromedp.CSS("#citizen")))
	if probs := layoutProblems(t, ctx); len(probs) > 0 {
		t.Errorf("sign-in layout on a phone: %s", strings.Join(probs, "; "))
	}
	do(t, ctx, "sign in", desktop(),
		chromedp.SendKeys(chromedp.CSS("#citizen"), citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#uses")))
	rows := get(t, ctx, "key uses", chromedp.Text(chromedp.CSS("#uses tbody")))
	// One key.used record per signature format: the raw documents and the
	// CAdES one are two uses of the key.
	if n := get(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#uses tbody tr").length`)); n != 2 {
		t.Fatalf("%d key uses shown, want 2 (raw and CAdES):\n%s", n, rows)
	}
	want := []string{"Sede electrónica de pruebas"}
	for _, d := range documents {
		want = append(want, d.name)
	}
	for _, w := range want {
		if !strings.Contains(rows, w) {
			t.Fatalf("the key-use table lacks %q:\n%s", w, rows)
		}
	}
	do(t, ctx, "phone layout", phone())
	if probs := layoutProblems(t, ctx); len(probs) > 0 {
		t.Errorf("layout on a phone: %s", strings.Join(probs, "; "))
	}
	do(t, ctx, "sign out",
		desktop(),
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#signin")))
	if page := get(t, ctx, "page text", chromedp.Text(chromedp.CSS("main"))); strings.Contains(page, "Sede electrónica de pruebas") {
		t.Fatalf("key uses still shown after signing out:\n%s", page)
	}
}
