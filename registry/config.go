package registry

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
)

// Config is the registry's part of the firmad configuration, the
// "registry:" section of firmad.yaml (section.go). For example:
//
//	staff:
//	  - name: ana.registrar
//	    role: registrar
//	    token_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
//	trusted_cas: [/etc/firma/fnmt-ciudadanos.pem, /etc/firma/dnie-ac.pem]
//	video_hours: "Mon-Fri 09:00-14:00,15:00-18:00"
//	zone: Europe/Madrid
//	max_password_failures: 5
//	activation_ttl: 720h
//	letter_ttl: 2160h
//	sms_code_ttl: 10m
//	password_url: https://clave.example.es/v1/registry/password
type Config struct {
	// Staff are the registrars and video agents, by the SHA-256 of their
	// bearer tokens (operators act with every role).
	Staff []StaffToken `yaml:"staff,omitempty"`
	// TrustedCAs are PEM files of the authorities whose certificates (FNMT,
	// DNIe) may register citizens at the advanced level.
	TrustedCAs []string `yaml:"trusted_cas,omitempty"`
	// VideoHours is the video-call timetable, e.g.
	// "Mon-Fri 09:00-14:00,15:00-18:00"; Zone its IANA time zone.
	VideoHours string `yaml:"video_hours"`
	Zone       string `yaml:"zone"`
	// MaxPasswordFailures wrong passwords for one DNI/NIE within the
	// hour lock its sign-in for 15 minutes (it lifts by itself; see
	// policy.DefaultPasswordRules).
	MaxPasswordFailures int           `yaml:"max_password_failures"`
	ActivationTTL       time.Duration `yaml:"activation_ttl"`
	LetterTTL           time.Duration `yaml:"letter_ttl"`
	SMSCodeTTL          time.Duration `yaml:"sms_code_ttl"`
	// PasswordURL is printed on confirmations and letters.
	PasswordURL string `yaml:"password_url,omitempty"`
	// Argon2 costs of new password hashes.
	Argon2Time    uint32 `yaml:"argon2_time"`
	Argon2Memory  uint32 `yaml:"argon2_memory_kib"`
	Argon2Threads uint8  `yaml:"argon2_threads"`
}

// StaffToken is one staff member's credential.
type StaffToken struct {
	Name        string `yaml:"name"`
	Role        string `yaml:"role"`         // registrar | video_agent
	TokenSHA256 string `yaml:"token_sha256"` // hex SHA-256 of the bearer token
}

// DefaultConfig is Cl@ve's timetable and the documented defaults.
func DefaultConfig() Config {
	return Config{VideoHours: DefaultHoursSpec, Zone: DefaultZone, MaxPasswordFailures: 5,
		ActivationTTL: 30 * 24 * time.Hour, LetterTTL: 90 * 24 * time.Hour, SMSCodeTTL: 10 * time.Minute,
		Argon2Time: DefaultArgon2.Time, Argon2Memory: DefaultArgon2.Memory, Argon2Threads: DefaultArgon2.Threads}
}

// Options turns the configuration into registry Options (without the SMS
// gateway, revoker, logger and registerer, which the caller wires).
func (c Config) Options() (Options, error) {
	var opt Options
	spec := c.VideoHours
	if spec == "" {
		spec = DefaultHoursSpec
	}
	h, err := ParseHours(spec, c.Zone)
	if err != nil {
		return opt, optErr("video_hours", "%v", err)
	}
	opt.Hours = h
	for i, s := range c.Staff {
		if s.Name == "" {
			return opt, optErr(fmt.Sprintf("staff[%d].name", i), "is required")
		}
		if r, err := policy.ParseRole(s.Role); err != nil || r == policy.Administrator {
			return opt, optErr(fmt.Sprintf("staff[%d].role", i), "%q is not registrar or video_agent", s.Role)
		}
	}
	if len(c.TrustedCAs) > 0 {
		pool := x509.NewCertPool()
		for i, f := range c.TrustedCAs {
			b, err := os.ReadFile(f)
			if err != nil {
				return opt, optErr(fmt.Sprintf("trusted_cas[%d]", i), "%v", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return opt, optErr(fmt.Sprintf("trusted_cas[%d]", i), "%s holds no PEM certificate", f)
			}
		}
		opt.TrustedCAs = pool
	}
	opt.MaxFailures = c.MaxPasswordFailures
	opt.ActivationTTL, opt.LetterTTL, opt.SMSCodeTTL = c.ActivationTTL, c.LetterTTL, c.SMSCodeTTL
	opt.ServiceURL = c.PasswordURL
	opt.Argon2 = Argon2{Time: c.Argon2Time, Memory: c.Argon2Memory, Threads: c.Argon2Threads}
	if opt.Argon2 != (Argon2{}) && (opt.Argon2.Time == 0 || opt.Argon2.Memory < 8*1024 || opt.Argon2.Threads == 0) {
		return opt, optErr("argon2_*", "time and threads must be at least 1 and memory at least 8192 KiB")
	}
	return opt, nil
}

// optErr is an Options error naming its field within the section, so
// that Validate can say which one without reading the message; its text is
// "registry.<field>: <problem>".
func optErr(field, format string, args ...any) error {
	return &config.FieldError{Field: SectionName + "." + field, Msg: fmt.Sprintf(format, args...)}
}
