package audit

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
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
	// "sms" (default) or "none". Email needs a mail gateway the service
	// does not have yet.
	Notify string `yaml:"notify"`
	// Flush fsyncs every commit so that records survive a power cut, not
	// only a crash of the process (see Options.Flush).
	Flush bool `yaml:"flush"`
	// MaxBatch and Linger tune group commit (see Options).
	MaxBatch int           `yaml:"max_batch"`
	Linger   time.Duration `yaml:"linger"`
}

// Credential is one auditor's bearer token or mTLS client certificate, by
// SHA-256 (hex, colons allowed): the secret itself is never configured.
type Credential struct {
	Name        string `yaml:"name"`
	TokenSHA256 string `yaml:"token_sha256,omitempty"`
	CertSHA256  string `yaml:"cert_sha256,omitempty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Origin: "firma.cloud/audit", CheckpointInterval: time.Minute, Notify: "sms"}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case !validName(c.Origin):
		return fmt.Errorf("audit.origin %q: %w: want a name without spaces or '+'", c.Origin, ErrInvalid)
	case c.CheckpointInterval < time.Second:
		return fmt.Errorf("audit.checkpoint_interval %v: %w: want at least 1s", c.CheckpointInterval, ErrInvalid)
	case c.Notify != "sms" && c.Notify != "none":
		return fmt.Errorf("audit.notify %q: %w: want sms or none", c.Notify, ErrInvalid)
	case c.MaxBatch < 0 || c.Linger < 0:
		return fmt.Errorf("audit.max_batch, audit.linger: %w: negative", ErrInvalid)
	}
	for i, a := range c.Auditors {
		if a.Name == "" || (a.TokenSHA256 == "" && a.CertSHA256 == "") {
			return fmt.Errorf("audit.auditors[%d]: %w: want a name and a token_sha256 or cert_sha256", i, ErrInvalid)
		}
	}
	return nil
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
