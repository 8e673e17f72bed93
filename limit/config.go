package limit

import (
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/config"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "limits"

// Config is the `limits:` section of firmad.yaml: what anonymous and
// cheap requests may make firmad spend. The defaults keep a firmad under
// attack within MemoryLimitMiB (README, "Limits"): verify bodies in
// flight (VerifyBytesMiB, held about twice while decoded) plus argon2id
// checks (PasswordChecks × the argon2 memory, 64 MiB by default) plus the
// ~100 MiB a serving firmad uses.
type Config struct {
	// MemoryLimitMiB is the Go runtime's soft memory limit (as GOMEMLIMIT,
	// which wins when set), so that the collector works harder near the
	// ceiling instead of letting garbage double the heap. 0: none.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
	// QueueWait is how long a request waits for room (verify bytes, a
	// password check) before a 503 with Retry-After.
	QueueWait time.Duration `yaml:"queue_wait"`

	// VerifyBytesMiB bounds the bytes of /v1/verify bodies (and gRPC
	// Verify) read at once: a request takes its declared length (the
	// maximum when undeclared) before reading.
	VerifyBytesMiB int `yaml:"verify_bytes_mib"`
	// VerifyPerClient bounds one client's verify requests in flight.
	VerifyPerClient int `yaml:"verify_per_client"`
	VerifyPerMinute int `yaml:"verify_per_minute"`
	VerifyBurst     int `yaml:"verify_burst"`
	// VerifyGRPCMessageMiB is the largest gRPC Verify request, and what
	// each call takes of VerifyBytesMiB: gRPC declares no length before
	// the message, so a call takes its bound (at most VerifyBytesMiB).
	VerifyGRPCMessageMiB int `yaml:"verify_grpc_message_mib"`

	// PasswordChecks bounds argon2id hashes computed at once (sign-ins,
	// password changes): each takes the hash's memory cost.
	PasswordChecks int `yaml:"password_checks"`

	// Per-client rates of the anonymous endpoints: requests a minute and
	// the burst allowed above it.
	TSAPerMinute   int `yaml:"tsa_per_minute"`
	TSABurst       int `yaml:"tsa_burst"`
	OCSPPerMinute  int `yaml:"ocsp_per_minute"`
	OCSPBurst      int `yaml:"ocsp_burst"`
	LoginPerMinute int `yaml:"login_per_minute"` // /me/login and the approval page's sign-in
	LoginBurst     int `yaml:"login_burst"`
	SMSPerMinute   int `yaml:"sms_per_minute"` // the approval page's code sends and resends
	SMSBurst       int `yaml:"sms_burst"`

	// Clients bounds the clients each rate limiter remembers (least
	// recently seen forgotten first); ClientTTL forgets an idle one.
	Clients   int           `yaml:"clients"`
	ClientTTL time.Duration `yaml:"client_ttl"`
}

// DefaultConfig is the section's defaults.
func DefaultConfig() Config {
	return Config{
		MemoryLimitMiB: 384, QueueWait: 5 * time.Second,
		VerifyBytesMiB: 64, VerifyPerClient: 2, VerifyPerMinute: 60, VerifyBurst: 10, VerifyGRPCMessageMiB: 16,
		PasswordChecks: 2,
		TSAPerMinute:   600, TSABurst: 50,
		OCSPPerMinute: 1200, OCSPBurst: 100,
		LoginPerMinute: 20, LoginBurst: 10,
		SMSPerMinute: 6, SMSBurst: 5,
		Clients: 10000, ClientTTL: 10 * time.Minute,
	}
}

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var all []error
	positive := func(field string, v int) {
		if v <= 0 {
			all = append(all, &config.FieldError{Field: field, Msg: fmt.Sprintf("%d: must be positive", v)})
		}
	}
	if c.MemoryLimitMiB < 0 {
		all = append(all, &config.FieldError{Field: "memory_limit_mib", Msg: "must not be negative (0: no limit)"})
	}
	if c.QueueWait <= 0 {
		all = append(all, &config.FieldError{Field: "queue_wait", Msg: "must be positive"})
	}
	if c.ClientTTL <= 0 {
		all = append(all, &config.FieldError{Field: "client_ttl", Msg: "must be positive"})
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"verify_bytes_mib", c.VerifyBytesMiB}, {"verify_per_client", c.VerifyPerClient},
		{"verify_per_minute", c.VerifyPerMinute}, {"verify_burst", c.VerifyBurst},
		{"verify_grpc_message_mib", c.VerifyGRPCMessageMiB},
		{"password_checks", c.PasswordChecks},
		{"tsa_per_minute", c.TSAPerMinute}, {"tsa_burst", c.TSABurst},
		{"ocsp_per_minute", c.OCSPPerMinute}, {"ocsp_burst", c.OCSPBurst},
		{"login_per_minute", c.LoginPerMinute}, {"login_burst", c.LoginBurst},
		{"sms_per_minute", c.SMSPerMinute}, {"sms_burst", c.SMSBurst},
		{"clients", c.Clients},
	} {
		positive(f.name, f.v)
	}
	return errors.Join(all...)
}

// Rate is a per-client limiter of perMinute requests with burst, named
// name in Refusals.
func (c *Config) Rate(name string, perMinute, burst int) *Clients {
	r := NewClients(float64(perMinute)/60, burst, c.Clients, c.ClientTTL)
	r.Name = name
	return r
}
