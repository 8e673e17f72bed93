package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestCitizenPageServed: the built firmad serves /me with the audit log
// behind it: the sign-in form, CSRF enforced, a wrong password refused.
func TestCitizenPageServed(t *testing.T) {
	s := initState(t)
	d := s.start(t)
	defer d.stop(t)
	base := "http://" + d.http

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/me", nil)
	req.Header.Set("Accept-Language", "es")
	code, body := do(req)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if code != http.StatusOK || !strings.Contains(body, `action="/me/login"`) || m == nil {
		t.Fatalf("/me: %d\n%s", code, body)
	}
	post := func(csrf string) (int, string) {
		form := url.Values{"csrf": {csrf}, "citizen": {"12345678Z"}, "password": {"not-the-password"}}
		req, _ := http.NewRequest(http.MethodPost, base+"/me/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		req.Header.Set("Accept-Language", "es")
		return do(req)
	}
	if code, body := post("forged"); code != http.StatusForbidden {
		t.Fatalf("forged token: %d\n%s", code, body)
	}
	if code, body := post(m[1]); code != http.StatusUnauthorized || !strings.Contains(body, "DNI/NIE o contraseña incorrectos.") {
		t.Fatalf("unknown citizen: %d\n%s", code, body)
	}
}
