package langpick

import (
	"slices"
	"testing"
)

// FuzzPickLang: any switch, cookie or Accept-Language gives one of the
// page languages, the switch only when it names one exactly. (Formerly in
// package web, whose test binary held it to hundreds of executions a
// second: see the package doc.)
func FuzzPickLang(f *testing.F) {
	f.Add("es-ES,es;q=0.9,en;q=0.8", "en", "es")
	f.Add("*;q=0", "", "")
	f.Add("en-GB;q=abc", "xx", "en")
	p := New("es", "en")
	f.Fuzz(func(t *testing.T, accept, cookie, lang string) {
		code, switched := p.Pick(lang, cookie, accept)
		if !slices.Contains([]string{"es", "en"}, code) {
			t.Fatalf("language %q", code)
		}
		if switched != (lang == "es" || lang == "en") || (switched && code != lang) {
			t.Fatalf("switch %q gave %q, switched %v", lang, code, switched)
		}
	})
}

func TestPick(t *testing.T) {
	p := New("es", "en")
	for _, tt := range []struct {
		query, cookie, accept string
		want                  string
		switched              bool
	}{
		{"", "", "", "es", false},
		{"en", "es", "es", "en", true},
		{"xx", "en", "es", "en", false},
		{"", "", "en-GB,en;q=0.9", "en", false},
		{"", "", "de-DE", "es", false},
		{"", "", "de;q=0.9,en;q=0.5", "en", false},
		{"", "", "en;q=abc", "es", false},
	} {
		if got, sw := p.Pick(tt.query, tt.cookie, tt.accept); got != tt.want || sw != tt.switched {
			t.Errorf("%+v: %q %v", tt, got, sw)
		}
	}
}
