package web

import (
	"fmt"

	"github.com/firma-cloud/firma/config"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "web"

// Cookie modes of Config.SecureCookies.
const (
	CookiesAuto   = "auto"   // Secure when the public URL is https or firmad serves TLS
	CookiesAlways = "always" // Secure, e.g. behind a TLS-terminating proxy with an http public URL
	CookiesNever  = "never"  // plain-HTTP development on loopback only
)

// Config is the `web:` section of firmad.yaml: the citizen approval page.
type Config struct {
	// SecureCookies decides whether the page's cookies are Secure (with
	// the __Host- prefix): auto, always or never.
	SecureCookies string `yaml:"secure_cookies"`
}

// DefaultConfig is the section's defaults.
func DefaultConfig() Config { return Config{SecureCookies: CookiesAuto} }

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// Validate names every bad field.
func (c *Config) Validate() error {
	switch c.SecureCookies {
	case CookiesAuto, CookiesAlways, CookiesNever:
		return nil
	}
	return &config.FieldError{Field: "secure_cookies", Msg: fmt.Sprintf("%q: want auto, always or never", c.SecureCookies)}
}

// Secure resolves the cookie mode for a service whose citizens use
// publicURL, served over TLS or not.
func (c *Config) Secure(publicURL string, tls bool) bool {
	switch c.SecureCookies {
	case CookiesAlways:
		return true
	case CookiesNever:
		return false
	}
	return tls || len(publicURL) >= 8 && publicURL[:8] == "https://"
}
