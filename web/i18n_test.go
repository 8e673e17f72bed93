package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMessagesComplete: every text exists in both languages with the same
// format verbs, so no page shows a key or a %!d.
func TestMessagesComplete(t *testing.T) {
	for _, l := range langs {
		for _, o := range langs {
			for k, v := range messages[l] {
				w, ok := messages[o][k]
				if !ok {
					t.Errorf("%q is in %s but not in %s", k, l, o)
					continue
				}
				if strings.Count(v, "%") != strings.Count(w, "%") {
					t.Errorf("%q: %s has %d format verbs, %s has %d", k, l, strings.Count(v, "%"), o, strings.Count(w, "%"))
				}
			}
		}
	}
}

func TestPickLang(t *testing.T) {
	cases := []struct {
		url, accept, cookie string
		want                Lang
		switched            bool
	}{
		{"/sign/x", "", "", Spanish, false},
		{"/sign/x", "en-US,en;q=0.8", "", English, false},
		{"/sign/x", "fr-FR,en;q=0.5", "", English, false},
		{"/sign/x", "de", "", Spanish, false},
		{"/sign/x", "en", "es", Spanish, false},
		{"/sign/x?lang=en", "es", "es", English, true},
		{"/sign/x?lang=xx", "en", "", English, false},
		{"/sign/x", "garbage;;q=", "", Spanish, false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.url, nil)
		if c.accept != "" {
			r.Header.Set("Accept-Language", c.accept)
		}
		if c.cookie != "" {
			r.Header.Set("Cookie", langCookie+"="+c.cookie)
		}
		got, sw := pickLang(r)
		if got != c.want || sw != c.switched {
			t.Errorf("%s accept %q cookie %q: %s %v, want %s %v", c.url, c.accept, c.cookie, got, sw, c.want, c.switched)
		}
	}
}

func TestCSRFToken(t *testing.T) {
	a := csrfToken("secret-a", "tx1", "")
	cases := []struct {
		name    string
		token   string
		differs bool
	}{
		{"same inputs", csrfToken("secret-a", "tx1", ""), false},
		{"other secret", csrfToken("secret-b", "tx1", ""), true},
		{"other transaction", csrfToken("secret-a", "tx2", ""), true},
		{"after sign-in", csrfToken("secret-a", "tx1", "session"), true},
	}
	for _, c := range cases {
		if (c.token != a) != c.differs {
			t.Errorf("%s: differs=%v", c.name, c.token != a)
		}
	}
	if csrfToken("", "tx1", "") != "" {
		t.Error("a token without a secret")
	}
}

func TestCommonName(t *testing.T) {
	p := &page{}
	cases := []struct{ dn, want string }{
		{`SERIALNUMBER=IDCES-50123456Q,CN=FERNÁNDEZ DE LA FUENTE\, MARÍA JOSÉ - 50123456Q,C=ES,2.5.4.4=#0c1746`, "FERNÁNDEZ DE LA FUENTE, MARÍA JOSÉ - 50123456Q"},
		{"CN=Firma Test Issuing CA 1,O=Firma Test,C=ES", "Firma Test Issuing CA 1"},
		{"O=No CN,C=ES", "O=No CN,C=ES"},
		{"CN=a+SERIALNUMBER=b,C=ES", "a"},
		{"", ""},
	}
	for _, c := range cases {
		if got := p.CommonName(c.dn); got != c.want {
			t.Errorf("%q: %q, want %q", c.dn, got, c.want)
		}
	}
}
