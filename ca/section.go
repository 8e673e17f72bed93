package ca

import (
	"strings"

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

// sectionFields maps the start of a defaults() message to its YAML key.
var sectionFields = []struct{ prefix, field string }{
	{"mode ", "mode"},
	{"base URL ", "base_url"},
	{"country ", "country"},
	{"policy ", "policies"},
	{"crl interval ", "crl_interval"},
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
		msg := strings.TrimPrefix(err.Error(), "ca config: ")
		field := "ca"
		for _, f := range sectionFields {
			if strings.HasPrefix(msg, f.prefix) {
				field = f.field
				msg = strings.TrimPrefix(msg, f.prefix)
				break
			}
		}
		return &config.FieldError{Field: field, Msg: msg}
	}
	if c.ExternalIssuersFile != "" {
		if err := check.LoadExternalIssuers(); err != nil {
			return &config.FieldError{Field: "external_issuers_file", Msg: strings.TrimPrefix(err.Error(), "ca config: ")}
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
