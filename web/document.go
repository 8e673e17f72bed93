package web

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/firma-cloud/firma/transaction"
)

// The citizen may open each document before approving it, once signed in
// to the transaction as its citizen: SessionDocument checks the session,
// so a signed-out visitor, or another citizen, gets the page's refusal
// instead. A document is shown as the browser would show it from disk,
// but never as HTML or script of this origin:
//   - PDF inline, for the browser's own viewer;
//   - text and XML inline as plain text (an XML or HTML document would
//     otherwise be rendered, and could carry script or links);
//   - anything else as a download (attachment, application/octet-stream).
// Every answer carries nosniff and a CSP whose sandbox puts the document
// in an opaque origin with no script, so even a browser that rendered it
// could not reach the page's cookies or post its forms.

// docPath is where document n of a transaction is opened.
func docPath(id string, n int) string {
	return PathPrefix + url.PathEscape(id) + "/doc/" + strconv.Itoa(n)
}

// docCSP sandboxes a document; PDF viewers need their plugin, allowed
// from this origin only.
const (
	docCSP    = "sandbox; default-src 'none'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
	docPDFCSP = "sandbox allow-scripts; default-src 'none'; object-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)

// docShow is how a document's media type is served: inline as itself
// (PDF), inline as plain text, or as a download.
func docShow(mediaType string) (contentType, disposition string) {
	mt, params, err := mime.ParseMediaType(mediaType)
	if err != nil {
		return "application/octet-stream", "attachment"
	}
	switch {
	case mt == "application/pdf":
		return "application/pdf", "inline"
	case strings.HasPrefix(mt, "text/"), mt == "application/xml", strings.HasSuffix(mt, "+xml"), mt == "application/json":
		// The portal's charset, if it gave one: Spanish text in
		// ISO-8859-1 must not show as mojibake.
		cs := "utf-8"
		if c := strings.ToLower(params["charset"]); c != "" && mime.FormatMediaType("text/plain", map[string]string{"charset": c}) != "" {
			cs = c
		}
		return mime.FormatMediaType("text/plain", map[string]string{"charset": cs}), "inline"
	}
	return "application/octet-stream", "attachment"
}

// DocKind is how the page offers document d: "open" or "download"; ""
// when there is nothing to open (only a digest was sent).
func (p *page) DocKind(d transaction.ViewDocument) string {
	if d.Size == 0 {
		return ""
	}
	if _, disp := docShow(d.MediaType); disp == "inline" {
		return "open"
	}
	return "download"
}

// DocURL is where document n opens.
func (p *page) DocURL(n int) string { return docPath(p.ID, n) }

func (h *Handler) document(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		p := h.newPage(w, r, id)
		h.pages.WithLabelValues("document", "no_document").Inc()
		h.refuse(w, r, p, http.StatusNotFound, p.L.T("err.no_document"))
		return
	}
	d, err := h.tx.SessionDocument(r.Context(), id, cookieValue(r, h.sessionCookie(id)), n)
	if err != nil {
		// The page itself, with the refusal in the citizen's language.
		h.fail(w, r, h.newPage(w, r, id), "document", err)
		return
	}
	h.pages.WithLabelValues("document", "ok").Inc()
	ct, disp := docShow(d.MediaType)
	hd := w.Header()
	hd.Set("Content-Type", ct)
	name := d.Name
	if name == "" {
		name = "document-" + strconv.Itoa(n+1)
	}
	// mime writes the RFC 2231 filename* form for a non-ASCII name.
	hd.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	hd.Set("X-Content-Type-Options", "nosniff")
	if ct == "application/pdf" {
		hd.Set("Content-Security-Policy", docPDFCSP)
	} else {
		hd.Set("Content-Security-Policy", docCSP)
	}
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(d.Content)))
	if r.Method != http.MethodHead {
		w.Write(d.Content)
	}
}
