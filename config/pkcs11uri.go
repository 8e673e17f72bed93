package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrURI is wrapped by every error about a malformed pkcs11: URI.
var ErrURI = errors.New("bad pkcs11 URI")

// PKCS11URI is the part of an RFC 7512 PKCS#11 URI that firmad uses to find
// its token. Attributes it does not use are kept in Path and Query so that
// callers can see them, but they select nothing.
//
// Written by hand: no maintained Go library for RFC 7512 fits (the grammar is
// two attribute lists with percent-encoding, a few dozen lines).
type PKCS11URI struct {
	Token      string // path attribute token: the token label
	Serial     string // path attribute serial
	SlotID     string // path attribute slot-id
	ModulePath string // query attribute module-path
	ModuleName string // query attribute module-name
	PINSource  string // query attribute pin-source, e.g. file:/run/secrets/pin
	Path       map[string]string
	Query      map[string]string
}

// pathAttrs are the path attributes RFC 7512 (and RFC 7512 errata/vendor
// use) defines; any other name is an error so that a typo is not silently
// ignored.
var pathAttrs = map[string]bool{
	"token": true, "manufacturer": true, "serial": true, "model": true,
	"library-manufacturer": true, "library-description": true, "library-version": true,
	"object": true, "type": true, "id": true,
	"slot-manufacturer": true, "slot-description": true, "slot-id": true,
}

var queryAttrs = map[string]bool{
	"pin-source": true, "pin-value": true, "module-name": true, "module-path": true,
}

// ParsePKCS11URI parses an RFC 7512 "pkcs11:" URI. A pin-value attribute is
// refused: a PIN written into the URI would end up in the config file.
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("%w: must start with \"pkcs11:\"", ErrURI)
	}
	pathPart, queryPart, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{Path: map[string]string{}, Query: map[string]string{}}
	if err := parseAttrs(pathPart, ";", pathAttrs, u.Path); err != nil {
		return nil, err
	}
	if err := parseAttrs(queryPart, "&", queryAttrs, u.Query); err != nil {
		return nil, err
	}
	if _, ok := u.Query["pin-value"]; ok {
		return nil, fmt.Errorf("%w: pin-value is not allowed (the PIN must not be in the config); use pin-source=file:... or FIRMA_HSM_PIN", ErrURI)
	}
	u.Token = u.Path["token"]
	u.Serial = u.Path["serial"]
	u.SlotID = u.Path["slot-id"]
	u.ModulePath = u.Query["module-path"]
	u.ModuleName = u.Query["module-name"]
	u.PINSource = u.Query["pin-source"]
	return u, nil
}

func parseAttrs(s, sep string, known map[string]bool, into map[string]string) error {
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, sep) {
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("%w: attribute %q has no value", ErrURI, part)
		}
		name = strings.ToLower(name)
		if !known[name] && !strings.HasPrefix(name, "x-") {
			return fmt.Errorf("%w: unknown attribute %q", ErrURI, name)
		}
		if _, dup := into[name]; dup {
			return fmt.Errorf("%w: attribute %q given twice", ErrURI, name)
		}
		v, err := url.PathUnescape(raw)
		if err != nil {
			if name == "pin-value" {
				// Never echo a PIN, even a malformed one.
				return fmt.Errorf("%w: attribute pin-value is badly percent-encoded", ErrURI)
			}
			return fmt.Errorf("%w: attribute %q: %w", ErrURI, name, err)
		}
		into[name] = v
	}
	return nil
}

// PINFile returns the file named by a pin-source of the form "file:PATH" or
// a plain path; "" if there is no pin-source.
func (u *PKCS11URI) PINFile() (string, error) {
	if u.PINSource == "" {
		return "", nil
	}
	if p, ok := strings.CutPrefix(u.PINSource, "file:"); ok {
		// Both file:/abs and file:///abs are in use.
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return "", fmt.Errorf("%w: pin-source file: has no path", ErrURI)
		}
		return p, nil
	}
	if strings.Contains(u.PINSource, ":") {
		return "", fmt.Errorf("%w: pin-source %q: only file: sources are supported", ErrURI, u.PINSource)
	}
	return u.PINSource, nil
}
