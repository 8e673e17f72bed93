package mail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/mail"
)

func TestCheck(t *testing.T) {
	const subject, text = "Cl@ve Firma: aviso", "Se firmó 1 documento."
	tests := []struct {
		name, to, subject, text string
		want                    error
	}{
		{"valid", "ana.garcia@example.es", subject, text, nil},
		{"plus and subdomain", "ana+firma@correo.example.es", subject, text, nil},
		{"accented subject", "ana@example.es", "Notificación de firma", text, nil},
		{"empty recipient", "", subject, text, mail.ErrRecipient},
		{"display name", "Ana <ana@example.es>", subject, text, mail.ErrRecipient},
		{"angle brackets", "<ana@example.es>", subject, text, mail.ErrRecipient},
		{"two recipients", "ana@example.es, luis@example.es", subject, text, mail.ErrRecipient},
		{"no domain dot", "ana@localhost", subject, text, mail.ErrRecipient},
		{"no at", "ana.example.es", subject, text, mail.ErrRecipient},
		{"header injection in address", "ana@example.es\r\nBcc: x@example.es", subject, text, mail.ErrRecipient},
		{"too long address", strings.Repeat("a", 250) + "@example.es", subject, text, mail.ErrRecipient},
		{"empty subject", "ana@example.es", "", text, mail.ErrSubject},
		{"subject with line break", "ana@example.es", "hola\r\nBcc: x@example.es", text, mail.ErrSubject},
		{"subject too long", "ana@example.es", strings.Repeat("s", mail.MaxSubject+1), text, mail.ErrSubject},
		{"subject not utf-8", "ana@example.es", "bad \xff", text, mail.ErrSubject},
		{"empty text", "ana@example.es", subject, "", mail.ErrText},
		{"blank text", "ana@example.es", subject, " \r\n ", mail.ErrText},
		{"text not utf-8", "ana@example.es", subject, "bad \xff", mail.ErrText},
		{"text with NUL", "ana@example.es", subject, "a\x00b", mail.ErrText},
		{"text too long", "ana@example.es", subject, strings.Repeat("x", mail.MaxText+1), mail.ErrText},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mail.Check(tc.to, tc.subject, tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if err != nil && tc.to != "" && strings.Contains(err.Error(), tc.to) {
				t.Errorf("error %q gives away the address", err)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ana.garcia@example.es", "a***@example.es"},
		{"ñu@example.es", "ñ***@example.es"},
		{"@example.es", "***"},
		{"nobody", "***"},
	} {
		if got := mail.Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
