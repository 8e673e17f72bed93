// Package config is firmad's typed configuration: one struct loaded from a
// YAML file, then overridden by FIRMA_* environment variables, then by
// command-line flags, and validated before anything is opened.
//
// The HSM PIN never comes from the YAML file: it is read from FIRMA_HSM_PIN,
// from hsm.pin_file, or from the pin-source of a pkcs11: URI, and it is
// never printed, logged or put into an error.
//
// Features add top-level sections of their own with RegisterSection, from
// their own files, and read them back with SectionOf.
package config
