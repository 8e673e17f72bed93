package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// browser is a citizen's browser on the approval pages of a firmad under
// test: it keeps cookies and returns redirects instead of following them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base,
		c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page requests path, posting form (with the Origin a browser sends) if it
// is set, and returns the status, the body and the Location header.
func (b *browser) page(method, path string, form url.Values) (int, string, string) {
	b.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, rd)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

// csrf returns the form token of a page.
func (b *browser) csrf(html string) string {
	b.t.Helper()
	m := webCSRFRe.FindStringSubmatch(html)
	if m == nil {
		b.t.Fatalf("no form token in:\n%s", html)
	}
	return m[1]
}
