package registry

import (
	"errors"
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
		// Options names its fields within the section ("registry.<field>").
		var fe *config.FieldError
		if !errors.As(err, &fe) {
			return err
		}
		return &config.FieldError{Field: strings.TrimPrefix(fe.Field, SectionName+"."), Msg: fe.Msg}
	}
	return nil
}
