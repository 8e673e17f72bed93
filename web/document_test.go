package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDocumentServed: a document opens only for the citizen signed in to
// its transaction, with the headers that keep it from running as this
// origin's page, and every refusal is the page in the citizen's language.
// The browser side (each type opened in Chromium) is e2e's
// TestBrowserOpensDocumentsAndConfirms.
func TestDocumentServed(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	doc := func(n string, lang string) resp { return f.get(t, "/sign/"+id+"/doc/"+n, "Accept-Language", lang) }

	page := f.get(t, "/sign/"+id)
	if strings.Contains(page.body, `class="doc-open"`) || !strings.Contains(page.body, `id="docs-signin"`) {
		t.Fatalf("signed out, the page offers the documents:\n%s", page.body)
	}
	for _, c := range []struct {
		n, lang string
		status  int
		text    string
	}{
		{"0", "es-ES", http.StatusUnauthorized, "Su sesión ha terminado o no es válida."},
		{"1", "en-GB", http.StatusUnauthorized, "Your session has ended or is not valid."},
		{"x", "es-ES", http.StatusNotFound, "Esta solicitud no tiene ese documento."},
		{"-1", "en-GB", http.StatusNotFound, "This request has no such document."},
	} {
		r := doc(c.n, c.lang)
		if r.status != c.status || !strings.Contains(r.body, c.text) || strings.Contains(r.body, "gastos deducibles") ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("signed out, document %s (%s): %d %q\n%s", c.n, c.lang, r.status, r.header.Get("Content-Type"), r.body)
		}
	}

	f.login(t, id)
	page = f.get(t, "/sign/"+id)
	for _, want := range []string{`id="doc-0" href="/sign/` + id + `/doc/0"`, `id="doc-1" href="/sign/` + id + `/doc/1"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("signed in, the page lacks %s", want)
		}
	}
	if strings.Contains(page.body, `id="doc-2"`) {
		t.Error("a digest-only document is offered to open")
	}
	r := doc("1", "es-ES")
	h := r.header
	if r.status != http.StatusOK || r.body != "gastos deducibles" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox;") || h.Get("Content-Type") != "application/octet-stream" ||
		h.Get("Content-Disposition") != `attachment; filename*=utf-8''Anexo%20A%20%E2%80%94%20gastos.txt` || h.Get("Cache-Control") != "no-store" {
		t.Errorf("document 1: %d %q %v", r.status, r.body, h)
	}
	// Digest only: nothing to open, said in the citizen's language.
	if r := doc("2", "en-GB"); r.status != http.StatusBadRequest || strings.Contains(r.body, "resolución") || !strings.Contains(r.body, `id="page-error"`) {
		t.Errorf("digest-only document: %d\n%s", r.status, r.body)
	}
	if r := doc("9", "es-ES"); r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="page-error"`) {
		t.Errorf("no such document: %d\n%s", r.status, r.body)
	}
}

// TestNoSuchPage: a path or method the page does not serve is its own
// "not found", in the citizen's language, not net/http's English.
func TestNoSuchPage(t *testing.T) {
	f := newFixture(t, nil)
	id := f.create(t)
	for _, c := range []struct{ method, path, lang, text string }{
		{http.MethodGet, "/sign/" + id + "/nope/1", "en-GB", "The signature request does not exist or is no longer available."},
		{http.MethodGet, "/sign/" + id + "/doc/1/x", "es-ES", "La solicitud de firma no existe o ya no está disponible."},
		{http.MethodPost, "/sign/" + id, "es-ES", "La solicitud de firma no existe o ya no está disponible."},
	} {
		req, _ := http.NewRequest(c.method, f.Server.URL+c.path, nil)
		req.Header.Set("Accept-Language", c.lang)
		r := f.do(t, req)
		if r.status != http.StatusNotFound || !strings.Contains(r.body, c.text) || r.header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: %d\n%s", c.method, c.path, r.status, r.body)
		}
	}
}
