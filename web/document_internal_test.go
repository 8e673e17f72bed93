package web

import "testing"

// TestDocShow: only PDF opens as itself; text and every XML (SVG and
// XHTML included, which would run script) open as plain text; the rest
// downloads.
func TestDocShow(t *testing.T) {
	for _, c := range []struct{ in, ct, disp string }{
		{"application/pdf", "application/pdf", "inline"},
		{"text/plain; charset=ISO-8859-1", "text/plain; charset=iso-8859-1", "inline"},
		{"text/plain", "text/plain; charset=utf-8", "inline"},
		{"text/html", "text/plain; charset=utf-8", "inline"},
		{"application/xml", "text/plain; charset=utf-8", "inline"},
		{"image/svg+xml", "text/plain; charset=utf-8", "inline"},
		{"application/xhtml+xml", "text/plain; charset=utf-8", "inline"},
		{"application/zip", "application/octet-stream", "attachment"},
		{"image/png", "application/octet-stream", "attachment"},
		{"", "application/octet-stream", "attachment"},
		{"not a type", "application/octet-stream", "attachment"},
	} {
		if ct, disp := docShow(c.in); ct != c.ct || disp != c.disp {
			t.Errorf("%q: %s %s, want %s %s", c.in, ct, disp, c.ct, c.disp)
		}
	}
}
