package fire

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/firma-cloud/firma/config"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "fire"

// Defaults of Config: the reference FIRe server's.
const (
	DefaultPath            = "/fire-signature/fireService"
	DefaultMaxParamBytes   = 8 << 20  // params.maxSize: one decoded parameter
	DefaultMaxRequestBytes = 12 << 20 // request.maxSize: the whole body
	DefaultMaxBatch        = 10       // batch.maxDocuments
	// MinLifetime is FIRe's shortest transaction life; firma's approval
	// TTL must not be shorter for FIRe clients' timing to hold.
	MinLifetime = 600 * time.Second
)

// Config is the `fire:` section of firmad.yaml: the FIRe-compatible
// endpoint. Off unless Enabled.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// Path is the service's path; the clients' default is
	// /fire-signature/fireService.
	Path string `yaml:"path"`
	// MaxParamBytes bounds one decoded parameter (dat), MaxRequestBytes
	// the request body; past either the answer is FIRe error 1.
	MaxParamBytes   int `yaml:"max_param_bytes"`
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxBatch is how many documents a batch may hold (error 43 past it).
	MaxBatch int `yaml:"max_batch"`
	// CertHeader, if set, names a header carrying the client certificate
	// (PEM or base64 DER) put there by a TLS-terminating proxy. It is
	// believed only on connections from loopback; off by default.
	CertHeader string `yaml:"cert_header"`
}

// DefaultConfig is the section's defaults.
func DefaultConfig() Config {
	return Config{Path: DefaultPath, MaxParamBytes: DefaultMaxParamBytes, MaxRequestBytes: DefaultMaxRequestBytes, MaxBatch: DefaultMaxBatch}
}

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, &config.FieldError{Field: field, Msg: msg}) }
	if !strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/") || strings.ContainsAny(c.Path, " {}?#") {
		bad("path", "must start with / and not end with one, without spaces, braces, ? or #")
	}
	if c.MaxParamBytes < 1<<10 {
		bad("max_param_bytes", "must be at least 1024")
	}
	if c.MaxRequestBytes < c.MaxParamBytes {
		bad("max_request_bytes", fmt.Sprintf("must be at least max_param_bytes (%d)", c.MaxParamBytes))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 1000 {
		bad("max_batch", "must be 1 to 1000")
	}
	if c.CertHeader != "" && strings.ContainsAny(c.CertHeader, " :\r\n") {
		bad("cert_header", "not a header name")
	}
	return errors.Join(errs...)
}
