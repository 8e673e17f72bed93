package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/mail/smtptest"
)

// audit.notify takes none, sms, email or both; with e-mail, audit.mail is
// checked (files read) and every bad field is named.
func TestMailConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "smtp-pass")
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.txt")
	for _, f := range []struct{ path, body string }{{pass, "relay-pass\n"}, {empty, "\n"}, {notPEM, "not a certificate"}} {
		if err := os.WriteFile(f.path, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := smtptest.New(t, smtptest.Options{})
	smtp := func(f func(*audit.MailConfig)) func(*audit.Config) {
		return func(c *audit.Config) {
			c.Notify = "email"
			c.Mail.Gateway, c.Mail.SMTPAddr, c.Mail.From = "smtp", "smtp.example.es:587", "no-reply@firma.example.es"
			c.Mail.Username, c.Mail.PasswordFile, c.Mail.CAFile = "firma", pass, srv.CAFile
			if f != nil {
				f(&c.Mail)
			}
		}
	}
	tests := []struct {
		name string
		set  func(*audit.Config)
		want string // "" for valid
	}{
		{"defaults", func(*audit.Config) {}, ""},
		{"none", func(c *audit.Config) { c.Notify = "none" }, ""},
		{"email to the outbox", func(c *audit.Config) { c.Notify = "email" }, ""},
		{"both", func(c *audit.Config) { c.Notify = "both" }, ""},
		{"pigeon", func(c *audit.Config) { c.Notify = "pigeon" }, "audit.notify"},
		{"smtp", smtp(nil), ""},
		{"smtp implicit", smtp(func(m *audit.MailConfig) { m.TLS = "implicit" }), ""},
		{"smtp plaintext to loopback", smtp(func(m *audit.MailConfig) { m.TLS, m.SMTPAddr = "none", "127.0.0.1:25" }), ""},
		{"smtp plaintext elsewhere", smtp(func(m *audit.MailConfig) { m.TLS = "none" }), "mail.tls"},
		{"unknown tls", smtp(func(m *audit.MailConfig) { m.TLS = "ssl" }), "mail.tls"},
		{"unknown gateway", smtp(func(m *audit.MailConfig) { m.Gateway = "sendmail" }), "mail.gateway"},
		{"no address", smtp(func(m *audit.MailConfig) { m.SMTPAddr = "" }), "mail.smtp_addr"},
		{"address without port", smtp(func(m *audit.MailConfig) { m.SMTPAddr = "smtp.example.es" }), "mail.smtp_addr"},
		{"no from", smtp(func(m *audit.MailConfig) { m.From = "" }), "mail.from"},
		{"unquoted @ in from", smtp(func(m *audit.MailConfig) { m.From = "Cl@ve Firma <no-reply@firma.example.es>" }), "mail.from"},
		{"username without password file", smtp(func(m *audit.MailConfig) { m.PasswordFile = "" }), "mail.password_file"},
		{"password file without username", smtp(func(m *audit.MailConfig) { m.Username = "" }), "mail.username"},
		{"missing password file", smtp(func(m *audit.MailConfig) { m.PasswordFile = filepath.Join(dir, "nope") }), "mail.password_file"},
		{"empty password file", smtp(func(m *audit.MailConfig) { m.PasswordFile = empty }), "mail.password_file"},
		{"ca file not PEM", smtp(func(m *audit.MailConfig) { m.CAFile = notPEM }), "mail.ca_file"},
		{"multi-line subject", smtp(func(m *audit.MailConfig) { m.Subject = "a\nb" }), "mail.subject"},
		{"short timeout", smtp(func(m *audit.MailConfig) { m.Timeout = time.Millisecond }), "mail.timeout"},
		{"short outbox retention", func(c *audit.Config) { c.Notify = "both"; c.Mail.OutboxKeeps = time.Minute }, "mail.outbox_keeps"},
		{"smtp unchecked while notices go by sms", func(c *audit.Config) { c.Mail.Gateway = "smtp" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := audit.DefaultConfig()
			tc.set(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "relay-pass") {
				t.Errorf("error %q gives away the password", err)
			}
		})
	}
}

// SMTPOptions reads the password (trailing newline dropped) and the CAs.
func TestMailConfigSMTPOptions(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{})
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("two words\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := audit.DefaultConfig().Mail
	m.Gateway, m.SMTPAddr, m.From, m.Username, m.PasswordFile, m.CAFile = "smtp", srv.Addr, "no-reply@firma.example.es", "firma", pass, srv.CAFile
	opt, err := m.SMTPOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Password != "two words" || opt.Username != "firma" || opt.TLS != mail.StartTLS || opt.RootCAs == nil || opt.Timeout != 30*time.Second {
		t.Errorf("options %+v", opt)
	}
}
