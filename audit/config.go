package audit

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/mail"
)

// Config is the audit part of firmad's configuration.
type Config struct {
	// Origin names the log in checkpoints and is the checkpoint key's name,
	// e.g. "sede.example.es/firma/audit". Every node of one service uses the
	// same.
	Origin string `yaml:"origin"`
	// CheckpointInterval is how often a checkpoint is signed while the log
	// grows.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// PseudonymKeyFile holds the key of Pseudonym; "" means a file beside
	// the database, made with a random key on first start. Copy it to
	// every node: records stay correlatable only under one key.
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
	// Auditors are the security officers, each with credentials of their
	// own (not operator credentials): they may read and export the log and
	// nothing else.
	Auditors []Credential `yaml:"auditors"`
	// Notify is how citizens hear of each signature made with their key:
	// "sms" (default), "email", "both" or "none". E-mail goes through
	// Mail.
	Notify string `yaml:"notify"`
	// Mail is the gateway of e-mail notices.
	Mail MailConfig `yaml:"mail"`
	// Flush fsyncs every commit so that records survive a power cut, not
	// only a crash of the process (see Options.Flush).
	Flush bool `yaml:"flush"`
	// Journal sends appends, with the SQLite store, through an append-only
	// journal file beside the database that moves into its tables in bulk
	// (sqlite.DB.JournalAudit): one write a commit instead of a SQLite
	// transaction. Default true; no effect with PostgreSQL.
	Journal bool `yaml:"journal"`
	// MaxBatch and Linger tune group commit (see Options).
	MaxBatch int           `yaml:"max_batch"`
	Linger   time.Duration `yaml:"linger"`
}

// MailConfig selects and configures the gateway of e-mail notices
// (audit.mail). The SMTP password is never in the file: only the path of
// a file holding it.
type MailConfig struct {
	// Gateway is "outbox" (keep messages in the store for operators to
	// read; development and sandbox) or "smtp" (a mail relay).
	Gateway string `yaml:"gateway"`
	// SMTPAddr is the relay's host:port, e.g. smtp.example.es:587.
	SMTPAddr string `yaml:"smtp_addr"`
	// From is the sender, e.g. `"Cl@ve Firma" <no-reply@firma.example.es>`.
	From string `yaml:"from"`
	// Username and PasswordFile authenticate to the relay (SMTP AUTH).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// TLS is "starttls" (default: required, nothing is sent without it),
	// "implicit" (TLS from the first byte, port 465) or "none" (only to a
	// relay on the loopback interface).
	TLS string `yaml:"tls"`
	// CAFile holds the PEM CAs the relay's certificate is checked
	// against; empty means the system's.
	CAFile string `yaml:"ca_file"`
	// Subject of the notices.
	Subject string `yaml:"subject"`
	// Timeout bounds handing one message to the relay.
	Timeout time.Duration `yaml:"timeout"`
	// OutboxKeeps is how long the outbox keeps a message.
	OutboxKeeps time.Duration `yaml:"outbox_keeps"`
}

// Emails reports whether notices go by e-mail.
func (c Config) Emails() bool { return c.Notify == "email" || c.Notify == "both" }

// Texts reports whether notices go by SMS.
func (c Config) Texts() bool { return c.Notify == "sms" || c.Notify == "both" }

// Credential is one auditor's bearer token or mTLS client certificate, by
// SHA-256 (hex, colons allowed): the secret itself is never configured.
type Credential struct {
	Name        string `yaml:"name"`
	TokenSHA256 string `yaml:"token_sha256,omitempty"`
	CertSHA256  string `yaml:"cert_sha256,omitempty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Origin: "firma.cloud/audit", CheckpointInterval: time.Minute, Notify: "sms", Journal: true,
		Mail: MailConfig{Gateway: "outbox", TLS: "starttls", Subject: mail.DefaultNoticeSubject, Timeout: 30 * time.Second,
			OutboxKeeps: 7 * 24 * time.Hour}}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case !validName(c.Origin):
		return &config.FieldError{Field: "audit.origin", Msg: fmt.Sprintf("%q: want a name without spaces or '+'", c.Origin)}
	case c.CheckpointInterval < time.Second:
		return &config.FieldError{Field: "audit.checkpoint_interval", Msg: fmt.Sprintf("%v: want at least 1s", c.CheckpointInterval)}
	case c.Notify != "sms" && c.Notify != "email" && c.Notify != "both" && c.Notify != "none":
		return &config.FieldError{Field: "audit.notify", Msg: fmt.Sprintf("%q: want none, sms, email or both", c.Notify)}
	case c.MaxBatch < 0 || c.Linger < 0:
		return &config.FieldError{Field: "audit.max_batch", Msg: "max_batch and linger must not be negative"}
	}
	for i, a := range c.Auditors {
		if a.Name == "" || (a.TokenSHA256 == "" && a.CertSHA256 == "") {
			return &config.FieldError{Field: fmt.Sprintf("audit.auditors[%d]", i), Msg: "want a name and a token_sha256 or cert_sha256"}
		}
	}
	if c.Emails() {
		return c.Mail.validate()
	}
	return nil
}

// validate checks the mail gateway, reading the password and CA files so
// that a missing one stops the start rather than the first notice.
func (m MailConfig) validate() error {
	bad := func(field, format string, a ...any) error {
		return &config.FieldError{Field: "mail." + field, Msg: fmt.Sprintf(format, a...)}
	}
	if err := mail.Check("check@example.es", m.Subject, "x"); err != nil {
		return bad("subject", "want 1 to %d characters on one line", mail.MaxSubject)
	}
	if m.OutboxKeeps < time.Hour {
		return bad("outbox_keeps", "%v: want at least 1h", m.OutboxKeeps)
	}
	switch m.Gateway {
	case "outbox":
		return nil
	case "smtp":
	default:
		return bad("gateway", "%q: want outbox or smtp", m.Gateway)
	}
	if m.SMTPAddr == "" {
		return bad("smtp_addr", "is required with gateway smtp (host:port)")
	}
	if m.From == "" {
		return bad("from", "is required with gateway smtp")
	}
	if m.Username != "" && m.PasswordFile == "" {
		return bad("password_file", "is required with a username")
	}
	if m.Username == "" && m.PasswordFile != "" {
		return bad("username", "is required with a password_file")
	}
	if m.Timeout < time.Second {
		return bad("timeout", "%v: want at least 1s", m.Timeout)
	}
	opt, err := m.SMTPOptions()
	if err != nil {
		return err
	}
	if _, err := mail.NewSMTP(opt); err != nil {
		// NewSMTP names the option at fault.
		field := "smtp_addr"
		if e := errs.As(err); e != nil && e.Field != "" {
			field = e.Field
		}
		return bad(field, "%s", strings.TrimPrefix(err.Error(), "mail smtp: "))
	}
	return nil
}

// SMTPOptions reads the password and CA files and returns the SMTP
// gateway's options (without logger, registerer or clock).
func (m MailConfig) SMTPOptions() (mail.SMTPOptions, error) {
	opt := mail.SMTPOptions{Addr: m.SMTPAddr, From: m.From, Username: m.Username, TLS: mail.TLSMode(m.TLS), Timeout: m.Timeout}
	if m.PasswordFile != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			return opt, &config.FieldError{Field: "mail.password_file", Msg: "cannot be read: " + readErr(err)}
		}
		opt.Password = strings.TrimRight(string(b), "\r\n")
		if opt.Password == "" {
			return opt, &config.FieldError{Field: "mail.password_file", Msg: "is empty"}
		}
	}
	if m.CAFile != "" {
		b, err := os.ReadFile(m.CAFile)
		if err != nil {
			return opt, &config.FieldError{Field: "mail.ca_file", Msg: "cannot be read: " + readErr(err)}
		}
		opt.RootCAs = x509.NewCertPool()
		if !opt.RootCAs.AppendCertsFromPEM(b) {
			return opt, &config.FieldError{Field: "mail.ca_file", Msg: "holds no PEM certificate"}
		}
	}
	return opt, nil
}

// EnsurePseudonymKey loads the pseudonym key from path, making the file
// with a random key (mode 0600) if it does not exist yet.
func EnsurePseudonymKey(path string) ([]byte, error) {
	k, err := LoadPseudonymKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k = make([]byte, MinPseudonymKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	// O_EXCL: if another process made it meanwhile, use theirs.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadPseudonymKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	return k, nil
}

// readErr is why a file could not be read, without repeating its path.
func readErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
