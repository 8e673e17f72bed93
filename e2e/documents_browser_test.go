package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

// TestBrowserOpensDocumentsAndConfirms: the citizen opens each document
// type before approving (PDF inline for the browser's viewer, text and
// XML shown as plain text, anything else a download), each served with
// Content-Disposition, nosniff and a sandboxing CSP; a signed-out
// visitor and another citizen get the page's refusal instead of the
// document; after approving, the confirmation says what was signed, when
// (with its zone) and with which certificate, then goes on to the portal.
// Cost: one Chromium, one transaction of four documents, 3 s of
// confirmation.
func TestBrowserOpensDocumentsAndConfirms(t *testing.T) {
	s := stack.New(t, stack.Options{Web: func(o *web.Options) { o.ConfirmFor = 3 * time.Second }})
	citizen := s.Advanced(56789012, "Elena", "Vista Previa")
	other := s.Advanced(56789013, "Óscar", "Ajeno Ruiz")
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><title>Portal</title><h1 id="done">OK</h1>`)
	}))
	t.Cleanup(site.Close)
	okURL := strings.Replace(site.URL, "127.0.0.1", "localhost", 1) + "/ok"
	p, _ := s.Portal("Sede de pruebas", okURL, okURL+"/error")
	pdf, err := os.ReadFile("../transaction/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	docs := []struct {
		name, mediaType, content string
		// what the browser must get
		contentType, disposition, link, linkEN string
	}{
		{"Contrato.pdf", "application/pdf", string(pdf), "application/pdf", "inline", "Abrir", "Open"},
		{"Resolución 2026-981.txt", "text/plain", "Se resuelve conceder la ayuda solicitada.\n", "text/plain; charset=utf-8", "inline", "Abrir", "Open"},
		{"Factura.xml", "application/xml", `<?xml version="1.0"?><factura><script>document.title="ejecutado"</script><total>12.34</total></factura>`,
			"text/plain; charset=utf-8", "inline", "Abrir", "Open"},
		{"Anexo.zip", "application/zip", "PK\x03\x04 anexo comprimido", "application/octet-stream", "attachment", "Descargar", "Download"},
	}
	req := transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: okURL + "/error"}
	for _, d := range docs {
		req.Documents = append(req.Documents, transaction.DocumentInput{Name: d.name, MediaType: d.mediaType, Content: []byte(d.content), Format: "cades"})
	}
	c, err := s.Tx.Create(s.Ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	pageURL := s.Server.URL + "/sign/" + c.ID
	docURL := func(n int) string { return fmt.Sprintf("%s/doc/%d", pageURL, n) }
	ctx := browser(t)
	// The page's CSP allows no fetch; the test's own script needs one to
	// read each answer's headers without navigating to a download.
	do(t, ctx, "bypass the CSP for the test's fetches", chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
		return chromedp.Void{}, err
	}))

	// In the browser's language: Spanish or English.
	either := func(s, es, en string) bool { return strings.Contains(s, es) || strings.Contains(s, en) }
	refused := func(who string, status int, es, en string) {
		t.Helper()
		for n := range docs {
			resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(docURL(n)))
			if err != nil {
				t.Fatalf("%s, document %d: %v", who, n, err)
			}
			body := get(t, ctx, "page text", chromedp.Text(chromedp.CSS("body")))
			if resp.Status != int64(status) || !either(body, es, en) || strings.Contains(body, docs[n].content[:8]) {
				t.Fatalf("%s, document %d: HTTP %d, want %d and %q\n%s", who, n, resp.Status, status, en, body)
			}
		}
	}
	// Signed out: the page lists the documents, opens none, and says
	// when they can be opened.
	do(t, ctx, "open the page signed out", chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.CSS("#docs-signin")))
	if n := get(t, ctx, "links", chromedp.Evaluate[int](`document.querySelectorAll("a.doc-open").length`)); n != 0 {
		t.Fatalf("%d document links before sign-in", n)
	}
	refused("signed out", http.StatusUnauthorized, "Su sesión ha terminado o no es válida.", "Your session has ended or is not valid.")

	// Another citizen cannot sign in to it, and so cannot open them.
	do(t, ctx, "another citizen signs in",
		chromedp.Navigate(pageURL),
		chromedp.SendKeys(chromedp.CSS("#citizen"), other),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#page-error")))
	if msg := get(t, ctx, "refusal", chromedp.Text(chromedp.CSS("#page-error"))); !either(msg, "es para otra persona", "is for someone else") {
		t.Fatalf("another citizen's sign-in: %q", msg)
	}
	refused("another citizen", http.StatusUnauthorized, "Su sesión ha terminado o no es válida.", "Your session has ended or is not valid.")

	// The citizen signs in and opens each one.
	do(t, ctx, "sign in",
		chromedp.Navigate(pageURL),
		chromedp.SendKeys(chromedp.CSS("#citizen"), citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	type answer struct {
		Link, Href, Type, Disposition, Nosniff, CSP, Body string
		Download                                          bool
		Status, Size                                      int
	}
	got := get(t, ctx, "fetch the documents", chromedp.Evaluate[[]answer](`(async () => {
		const out = [];
		for (const a of document.querySelectorAll("a.doc-open")) {
			const r = await fetch(a.href);
			const b = new Uint8Array(await r.arrayBuffer());
			out.push({Link: a.firstChild.textContent.trim(), Href: a.href, Download: a.hasAttribute("download"), Status: r.status, Size: b.length,
				Type: r.headers.get("content-type"), Disposition: r.headers.get("content-disposition"),
				Nosniff: r.headers.get("x-content-type-options"), CSP: r.headers.get("content-security-policy"),
				Body: new TextDecoder("latin1").decode(b.slice(0, 8))});
		}
		return out;
	})()`, chromedp.EvalAwaitPromise))
	if len(got) != len(docs) {
		t.Fatalf("%d document links, want %d: %+v", len(got), len(docs), got)
	}
	for n, d := range docs {
		g := got[n]
		if g.Href != docURL(n) || (g.Link != d.link && g.Link != d.linkEN) || g.Download != (d.disposition == "attachment") || g.Status != 200 || g.Size != len(d.content) ||
			g.Type != d.contentType || !strings.HasPrefix(g.Disposition, d.disposition+";") || g.Nosniff != "nosniff" ||
			!strings.HasPrefix(g.CSP, "sandbox") || !strings.HasPrefix(d.content, g.Body) {
			t.Errorf("document %d (%s): %+v", n, d.name, g)
		}
	}
	if !strings.Contains(got[1].Disposition, `filename*=utf-8''Resoluci%C3%B3n%202026-981.txt`) {
		t.Errorf("a non-ASCII name: %q", got[1].Disposition)
	}
	// Text and XML open in the browser as text: the XML's script is text,
	// not run.
	for _, n := range []int{1, 2} {
		do(t, ctx, "open "+docs[n].name, chromedp.Navigate(docURL(n)))
		shown := get(t, ctx, "shown text", chromedp.Evaluate[string](`document.body.innerText`))
		title := get(t, ctx, "title", chromedp.Evaluate[string](`document.title`))
		if strings.TrimSpace(shown) != strings.TrimSpace(docs[n].content) || title == "ejecutado" {
			t.Errorf("%s shows %q (title %q), want its text", docs[n].name, shown, title)
		}
	}

	// Approve: the confirmation, then the portal.
	code, _ := s.LastOTP(citizen)
	do(t, ctx, "approve",
		chromedp.Navigate(pageURL),
		chromedp.SendKeys(chromedp.CSS("#otp"), code),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")))
	confirm := get(t, ctx, "confirmation", chromedp.Text(chromedp.CSS("main")))
	serial := get(t, ctx, "certificate", chromedp.Text(chromedp.CSS("#cert-serial")))
	when := regexp.MustCompile(`(Firmado el|Signed on) \d\d/\d\d/\d{4} \d\d:\d\d:\d\d (CET|CEST)\.`)
	if !when.MatchString(confirm) || serial == "" || !strings.Contains(confirm, "Sede de pruebas") {
		t.Fatalf("confirmation:\n%s", confirm)
	}
	for _, d := range docs {
		if !strings.Contains(confirm, d.name) {
			t.Errorf("the confirmation does not name %q", d.name)
		}
	}
	screenshot(t, ctx, "confirmation-desktop")
	do(t, ctx, "on to the portal", chromedp.WaitVisible(chromedp.CSS("#done")))
	if loc := get(t, ctx, "location", chromedp.Location()); loc != okURL+"?transaction_id="+c.ID {
		t.Fatalf("browser landed on %s", loc)
	}
	if v := s.WaitEnded(c.ID); v.State != transaction.StateDone {
		t.Fatalf("transaction %s", v.State)
	}
}
