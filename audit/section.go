package audit

import "github.com/firma-cloud/firma/config"

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "audit"

func init() {
	// Config.Validate names fields in full ("audit.origin ..."), which
	// config keeps as they are.
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}
