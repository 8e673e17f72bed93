package ca

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// LoadConfig reads a Config from the YAML file at path. Unknown keys are
// errors, so a misspelt setting is not silently ignored; the external
// issuers file, if named, is read too. Durations are Go durations
// ("8760h", "30m").
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("ca config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("ca config %s: %w", path, err)
	}
	if err := c.LoadExternalIssuers(); err != nil {
		return c, err
	}
	check := c
	if err := check.defaults(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
