package registry_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfirmationPDF(t *testing.T) {
	needTool(t, "pdftotext")
	ctx := context.Background()
	tests := []struct {
		name     string
		register func(e *env) (string, string, []byte, error) // code, level, pdf
		wantText []string
	}{
		{name: "in person", wantText: []string{"José Núñez García", "12345678Z", "advanced"},
			register: func(e *env) (string, string, []byte, error) {
				c, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
				if err != nil {
					return "", "", nil, err
				}
				pdf, err := c.PDF()
				return c.ActivationCode, c.Citizen.Level, pdf, err
			}},
		{name: "video call", wantText: []string{"José Núñez García", "basic", "electronic certificate or DNIe"},
			register: func(e *env) (string, string, []byte, error) {
				c, err := e.reg.RegisterVideoCall(ctx, videoAgent, person("Y1234567X"))
				if err != nil {
					return "", "", nil, err
				}
				pdf, err := c.PDF()
				return c.ActivationCode, c.Citizen.Level, pdf, err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			code, _, pdf, err := tt.register(e)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pdf), "%PDF-") {
				t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
			}
			path := filepath.Join(t.TempDir(), "confirmation.pdf")
			if err := os.WriteFile(path, pdf, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", path, "-").CombinedOutput()
			if err != nil {
				t.Fatalf("pdftotext: %v: %s", err, out)
			}
			text := string(out)
			for _, want := range append(tt.wantText, code, "Activation code") {
				if !strings.Contains(text, want) {
					t.Errorf("PDF text lacks %q:\n%s", want, text)
				}
			}
		})
	}
}
