package main

import (
	htmlpkg "html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
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

var refreshRe = regexp.MustCompile(`http-equiv="refresh" content="\d+;url=([^"]+)"`)

// follow is the browser after an approval: it loads the progress page the
// approval sent it to (code, loc) and then each meta refresh's target
// (polling: at once, not after the refresh's seconds) until a page sends
// it elsewhere, and returns that answer. A minute is the bound.
func (b *browser) follow(code int, html, loc string) (int, string, string) {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for code == http.StatusSeeOther && strings.HasPrefix(loc, "/sign/") {
		code, html, loc = b.page(http.MethodGet, loc, nil)
		for code == http.StatusOK {
			m := refreshRe.FindStringSubmatch(html)
			if m == nil {
				return code, html, loc
			}
			if target := htmlpkg.UnescapeString(m[1]); !strings.HasPrefix(target, "/sign/") {
				// The confirmation after signing: its refresh is where
				// the browser goes on, as a redirect would send it.
				if !strings.Contains(html, `id="confirm"`) {
					b.t.Fatalf("a refresh to %s from a page that is not the confirmation:\n%s", target, html)
				}
				return http.StatusSeeOther, html, target
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("still on the progress page after a minute:\n%s", html)
			}
			time.Sleep(20 * time.Millisecond)
			code, html, loc = b.page(http.MethodGet, htmlpkg.UnescapeString(m[1]), nil)
		}
	}
	return code, html, loc
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
