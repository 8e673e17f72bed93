package csc

import (
	"errors"
	"time"

	"github.com/firma-cloud/firma/config"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "csc"

// Config is the `csc:` section of firmad.yaml. The OTP limits, and the
// wrong-code rule with its lockout, are the transactions section's.
type Config struct {
	// Enabled serves the CSC API under /csc/v2/.
	Enabled bool `yaml:"enabled"`
	// ExplicitAuthorize serves the explicit path (credentials/sendOTP and
	// credentials/authorize), where the client collects the citizen's SMS
	// code in its own page and relays it; credentials on it say SCAL 1.
	// Default on, for clients such as pyHanko that have no other.
	ExplicitAuthorize bool `yaml:"explicit_authorize"`
	// OAuth serves the OAuth 2.0 authorisation server (csc/oauth) at
	// /csc/v2/oauth2/... and the citizen's consent page at
	// /sign/consent/{id}: the SCAL2 way, where the citizen types the SMS
	// code into firma's page. Default on.
	OAuth bool `yaml:"oauth"`
	// SADTTL is how long a SAD may be used after credentials/authorize.
	SADTTL time.Duration `yaml:"sad_ttl"`
	// OTPLockout is deprecated: transactions.otp_lockout is the one
	// lockout of every way a code is typed. Set (non-zero), it still
	// overrides that one, for configurations written before.
	OTPLockout time.Duration `yaml:"otp_lockout,omitempty"`
	// MaxSignatures is the most hashes one SAD may authorise (multisign).
	MaxSignatures int `yaml:"max_signatures"`
	// Name, Description and Logo are what info returns.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Logo        string `yaml:"logo"`
}

// DefaultConfig is the section's defaults.
func DefaultConfig() Config {
	return Config{Enabled: true, ExplicitAuthorize: true, OAuth: true, SADTTL: DefaultSADTTL, MaxSignatures: DefaultMaxSignatures}
}

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var errs []error
	if c.SADTTL < 10*time.Second || c.SADTTL > time.Hour {
		errs = append(errs, &config.FieldError{Field: "sad_ttl", Msg: "must be 10s to 1h"})
	}
	if c.OTPLockout != 0 && (c.OTPLockout < time.Minute || c.OTPLockout > 24*time.Hour) {
		errs = append(errs, &config.FieldError{Field: "otp_lockout", Msg: "must be 1m to 24h (deprecated: set transactions.otp_lockout)"})
	}
	if !c.OAuth && !c.ExplicitAuthorize {
		errs = append(errs, &config.FieldError{Field: "explicit_authorize", Msg: "cannot be off with oauth off too: no credential could be authorised"})
	}
	if c.MaxSignatures < 1 || c.MaxSignatures > 1000 {
		errs = append(errs, &config.FieldError{Field: "max_signatures", Msg: "must be 1 to 1000"})
	}
	return errors.Join(errs...)
}
