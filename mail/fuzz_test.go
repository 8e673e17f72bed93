package mail_test

import (
	netmail "net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/firma-cloud/firma/mail"
)

// Check never panics, and what it accepts is safe to put in headers: one
// bare address that parses back to itself, a one-line UTF-8 subject.
func FuzzCheck(f *testing.F) {
	for _, s := range [][3]string{
		{"ana@example.es", "Cl@ve Firma", "texto"},
		{"Ana <ana@example.es>", "a\r\nBcc: x@example.es", ""},
		{"\"a b\"@example.es", "ñandú", "x\x00"},
		{"a@b.c, d@e.f", "s", "t"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, to, subject, text string) {
		if err := mail.Check(to, subject, text); err != nil {
			return
		}
		a, err := netmail.ParseAddress(to)
		if err != nil || a.Address != to || a.Name != "" {
			t.Fatalf("accepted address %q parses to %v, %v", to, a, err)
		}
		if strings.ContainsAny(to+subject, "\r\n") || !utf8.ValidString(subject) || !utf8.ValidString(text) {
			t.Fatalf("accepted %q / %q", to, subject)
		}
		at := strings.LastIndexByte(to, '@')
		if m := mail.Mask(to); !strings.HasSuffix(m, to[at:]) || !strings.Contains(m, "***") || len(m) > len(to)+3 {
			t.Fatalf("Mask(%q) = %q", to, m)
		}
	})
}
