package config

import "flag"

// LoadPartial is Load for tools that link only some features (firmactl
// reading firmad.yaml): top-level sections no linked feature registered
// are skipped rather than refused (LoadFilePartial).
func LoadPartial(path string, getenv func(string) string, fs *flag.FlagSet) (*Config, error) {
	c := Default()
	if err := c.LoadFilePartial(path); err != nil {
		return nil, err
	}
	return c.finish(getenv, fs)
}
