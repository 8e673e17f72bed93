package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/internal/firmadtest"
)

// audit.notify and audit.mail come from firmad.yaml with FIRMA_AUDIT_*
// overrides, and bad values stop the start naming the field in full.
func TestMailSection(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "smtp.pass")
	if err := os.WriteFile(pass, []byte("relay-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	smtp := map[string]string{"FIRMA_AUDIT_NOTIFY": "both", "FIRMA_AUDIT_MAIL_GATEWAY": "smtp",
		"FIRMA_AUDIT_MAIL_SMTP_ADDR": "smtp.example.es:465", "FIRMA_AUDIT_MAIL_TLS": "implicit",
		"FIRMA_AUDIT_MAIL_FROM": "no-reply@firma.example.es", "FIRMA_AUDIT_MAIL_USERNAME": "firmad",
		"FIRMA_AUDIT_MAIL_PASSWORD_FILE": pass, "FIRMA_AUDIT_MAIL_SUBJECT": "Aviso de firma", "FIRMA_AUDIT_MAIL_TIMEOUT": "10s"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range smtp {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string // error parts; nil for valid
	}{
		{name: "email to the outbox", env: map[string]string{"FIRMA_AUDIT_NOTIFY": "email"}},
		{name: "smtp", env: smtp},
		{name: "notify pigeon", env: map[string]string{"FIRMA_AUDIT_NOTIFY": "pigeon"}, want: []string{"audit.notify", "pigeon"}},
		{name: "unknown gateway", env: with("FIRMA_AUDIT_MAIL_GATEWAY", "sendmail"), want: []string{"audit.mail.gateway", "sendmail"}},
		{name: "plaintext off loopback", env: with("FIRMA_AUDIT_MAIL_TLS", "none"), want: []string{"audit.mail.tls", "loopback"}},
		{name: "missing password file", env: with("FIRMA_AUDIT_MAIL_PASSWORD_FILE", filepath.Join(dir, "nope")), want: []string{"audit.mail.password_file"}},
		{name: "no relay address", env: with("FIRMA_AUDIT_MAIL_SMTP_ADDR", "smtp.example.es"), want: []string{"audit.mail.smtp_addr"}},
		{name: "bad timeout", env: with("FIRMA_AUDIT_MAIL_TIMEOUT", "soon"), want: []string{"FIRMA_AUDIT_MAIL_TIMEOUT", "audit.mail.timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadSections(t, "testdata/sections.yaml", tc.env)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				a := auditSection(cfg)
				if a.Notify != tc.env["FIRMA_AUDIT_NOTIFY"] {
					t.Errorf("notify %q", a.Notify)
				}
				if tc.env["FIRMA_AUDIT_MAIL_GATEWAY"] == "smtp" && (a.Mail.SMTPAddr != "smtp.example.es:465" || a.Mail.TLS != "implicit" ||
					a.Mail.Username != "firmad" || a.Mail.PasswordFile != pass || a.Mail.Subject != "Aviso de firma" || a.Mail.Timeout != 10*time.Second) {
					t.Errorf("audit.mail %+v", a.Mail)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "relay-pass") {
				t.Errorf("error %q gives away the password", err)
			}
		})
	}
}

// The built firmad refuses to start with a bad audit.mail (exit 2, the
// field named), and a relay that is down does not stop it: notices wait.
func TestMailStartup(t *testing.T) {
	s := initState(t)
	smtpEnv := []string{"FIRMA_AUDIT_NOTIFY=email", "FIRMA_AUDIT_MAIL_GATEWAY=smtp", "FIRMA_AUDIT_MAIL_FROM=no-reply@firma.example.es"}
	tests := []struct {
		name string
		env  []string
		code int
		want string
	}{
		{"no relay address", smtpEnv, exitConfig, "audit.mail.smtp_addr"},
		{"plaintext to a remote relay", append(smtpEnv, "FIRMA_AUDIT_MAIL_SMTP_ADDR=smtp.example.es:25", "FIRMA_AUDIT_MAIL_TLS=none"), exitConfig, "audit.mail.tls"},
		{"password file missing", append(smtpEnv, "FIRMA_AUDIT_MAIL_SMTP_ADDR=smtp.example.es:587", "FIRMA_AUDIT_MAIL_USERNAME=firmad",
			"FIRMA_AUDIT_MAIL_PASSWORD_FILE=var/nope.pass"), exitConfig, "audit.mail.password_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "firmad"), "-config", "var/firmad.yaml")
			cmd.Dir = s.dir
			cmd.Env = firmadtest.CleanEnv(tt.env...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("firmad kept running")
			}
			if code := exitCode(err); code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %d, want %d and %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
	t.Run("relay down", func(t *testing.T) {
		d := s.start(t, append(smtpEnv, "FIRMA_AUDIT_MAIL_SMTP_ADDR="+firmadtest.FreeAddr(t))...)
		if code, body := get(t, "http://"+d.http+"/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz: %d %s", code, body)
		}
		_, body := get(t, "http://"+d.http+"/metrics")
		for _, m := range []string{`firma_mail_smtp_messages_total{outcome="sent"} 0`, "firma_mail_smtp_send_seconds_count 0", "firma_mail_notices_dropped_total 0"} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
		if code := d.stop(t); code != 0 {
			t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
		}
	})
}
