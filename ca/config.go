package ca

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// EnvConfig names a YAML file with the CA settings (Config's yaml keys:
// base_url, organization, root_name, policies, qc_statements, mode,
// citizen_validity, crl_interval, ...). firmad and firmactl read it.
// TODO(issue 3): read a "ca:" section once config.Config carries Config,
// and keep this variable as an override.
const EnvConfig = "FIRMA_CA_CONFIG"

// EnvBaseURL overrides the publication base URL alone.
const EnvBaseURL = "FIRMA_CA_BASE_URL"

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

// Settings is the configuration firmad and firmactl use: the file named
// by FIRMA_CA_CONFIG if set, with FIRMA_CA_BASE_URL overriding its base
// URL, and listenHTTP (firmad's HTTP listener) as the base URL when
// neither gives one.
func Settings(getenv func(string) string, listenHTTP string) (Config, error) {
	var c Config
	if path := getenv(EnvConfig); path != "" {
		var err error
		if c, err = LoadConfig(path); err != nil {
			return c, err
		}
	}
	if u := getenv(EnvBaseURL); u != "" {
		c.BaseURL = u
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL(listenHTTP)
	}
	return c, nil
}
