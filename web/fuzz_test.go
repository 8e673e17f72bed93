package web

import (
	"net/http/httptest"
	"testing"
)

// FuzzPickLang: any Accept-Language, cookie or switch gives one of the
// page languages.
func FuzzPickLang(f *testing.F) {
	f.Add("es-ES,es;q=0.9,en;q=0.8", "en", "es")
	f.Add("*;q=0", "", "")
	f.Add("en-GB;q=abc", "xx", "en")
	f.Fuzz(func(t *testing.T, accept, cookie, lang string) {
		r := httptest.NewRequest("GET", "/sign/x", nil)
		q := r.URL.Query()
		q.Set("lang", lang)
		r.URL.RawQuery = q.Encode()
		r.Header.Set("Accept-Language", accept)
		r.Header.Set("Cookie", langCookie+"="+cookie)
		if l, _ := pickLang(r); l != Spanish && l != English {
			t.Fatalf("language %q", l)
		}
	})
}

// FuzzCommonName: any distinguished name string is shown without a panic.
func FuzzCommonName(f *testing.F) {
	f.Add(`CN=GARCÍA\, LUCÍA,C=ES`)
	f.Add(`\`)
	f.Add(`CN=#0c03616263+O=x`)
	p := &page{}
	f.Fuzz(func(t *testing.T, dn string) {
		p.CommonName(dn)
	})
}
