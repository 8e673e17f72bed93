package ca

import (
	"errors"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "ca"

func init() {
	// Empty fields take New's defaults, so that a changed organization
	// still names the CAs after it.
	config.RegisterSection(SectionName, func() any { return &Config{} })
}

// Validate checks the settings as New will, naming the field at fault.
func (c *Config) Validate() error {
	for _, t := range []struct {
		field string
		t     keystore.Type
	}{{"root_key_type", c.RootKeyType}, {"issuing_key_type", c.IssuingKeyType}, {"citizen_key_type", c.CitizenKeyType}} {
		if _, err := keystore.ParseType(string(t.t)); err != nil {
			return &config.FieldError{Field: t.field, Msg: err.Error()}
		}
	}
	check := *c
	if err := check.defaults(); err != nil {
		return fieldOf(err)
	}
	if c.ExternalIssuersFile != "" {
		if err := check.LoadExternalIssuers(); err != nil {
			return fieldOf(err)
		}
	}
	return nil
}

// FromConfig returns the ca section of c ready for New: base_url defaults
// to firmad's HTTP listener and the external issuers file is read.
// firmad and firmactl both use it, since the URLs go into certificates.
func FromConfig(c *config.Config) (Config, error) {
	var s Config
	if p := config.SectionOf[Config](c, SectionName); p != nil {
		s = *p
	}
	if s.BaseURL == "" {
		s.BaseURL = DefaultBaseURL(c.Listen.HTTP)
	}
	if err := s.LoadExternalIssuers(); err != nil {
		return s, err
	}
	return s, nil
}

// fieldOf names the field a settings error is about.
func fieldOf(err error) error {
	var ce *configError
	if !errors.As(err, &ce) {
		return &config.FieldError{Field: "ca", Msg: err.Error()}
	}
	return &config.FieldError{Field: ce.field, Msg: ce.msg}
}
