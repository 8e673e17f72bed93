package registry

import (
	"strings"

	"github.com/firma-cloud/firma/config"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "registry"

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// Validate checks the settings as Options will, naming the field at fault.
func (c *Config) Validate() error {
	if _, err := c.Options(); err != nil {
		// Options' errors start with "registry.<field>: ".
		field, msg, ok := strings.Cut(strings.TrimPrefix(err.Error(), SectionName+"."), ": ")
		if !ok {
			return err
		}
		return &config.FieldError{Field: field, Msg: msg}
	}
	return nil
}
