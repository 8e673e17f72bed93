package tsa

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "tsa"

// DefaultPolicy is ETSI EN 319 421's best-practices time-stamp policy
// (itu-t(0) identified-organization(4) etsi(0) time-stamp-policy(2023)
// policy-identifiers(1) best-practices-ts-policy(1)).
const DefaultPolicy = "0.4.0.2023.1.1"

// Config is the `tsa:` section of firmad.yaml. With no URLs firmad runs
// the built-in TSA (policy .. require_synced_clock) and timestamps with
// it; with URLs it timestamps through those TSAs (a Client over URLs,
// roots, timeout and retries) and serves no TSA of its own.
type Config struct {
	// Policy is the built-in TSA's policy OID, dotted; with URLs, the
	// policy asked of the external TSAs ("" asks for none).
	Policy string `yaml:"policy"`
	// Accuracy is written in every token of the built-in TSA.
	Accuracy time.Duration `yaml:"accuracy"`
	// KeyType is the built-in TSA's key type.
	KeyType keystore.Type `yaml:"key_type"`
	// SerialBlock is how many serial numbers a node takes from the store
	// at once (a durable high-water mark moved one block per write).
	// Serials stay unique across replicas and increasing within each, and
	// a restart skips the rest of its block. 1 also keeps them increasing
	// across replicas, at one store write per token, which limits the TSA
	// to the store's single-writer rate; the default, 1000, costs a write
	// per thousand tokens. Random 160-bit serials (RFC 3161 allows them)
	// would need no store at all, but the issuance log and its audit
	// summaries order tokens by serial and name serial ranges in 64 bits,
	// and the tokens of one node would no longer be in issue order.
	SerialBlock int `yaml:"serial_block"`
	// KeyUsagePeriod is how long a built-in TSA key signs before it is
	// rolled over.
	KeyUsagePeriod time.Duration `yaml:"key_usage_period"`
	// RequireSyncedClock refuses tokens (timeNotAvailable) while the
	// kernel clock is not synchronised within Accuracy; off, it is only
	// logged, for development machines without NTP.
	RequireSyncedClock bool `yaml:"require_synced_clock"`
	// AuditInterval is how long one audit interval of the built-in TSA
	// lasts: its key use is one key.activated record opening the interval
	// and one key.used summary closing it, the per-token detail being in
	// the issuance log, so that anonymous requests cannot grow the audit
	// log one record per token. Also closed on shutdown.
	AuditInterval time.Duration `yaml:"audit_interval"`

	// URLs are external TSAs, tried in order with failover.
	URLs []string `yaml:"urls,omitempty"`
	// Roots are PEM files of the CAs the external TSAs' certificates
	// must chain to; required with URLs.
	Roots []string `yaml:"roots,omitempty"`
	// Timeout bounds each exchange with an external TSA.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many more rounds over URLs follow the first; 0
	// means none.
	Retries int `yaml:"retries"`
	// BreakerCooldown is how long an external TSA that timed out or
	// could not be reached is skipped before one trial request goes to
	// it again, so that a hung TSA costs one timeout, not one per document.
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
}

// DefaultSerialBlock is Config.SerialBlock's default.
const DefaultSerialBlock = 1000

// DefaultConfig is the section's defaults: the built-in TSA.
func DefaultConfig() Config {
	return Config{Policy: DefaultPolicy, Accuracy: time.Second, KeyType: keystore.ECP256, SerialBlock: DefaultSerialBlock,
		KeyUsagePeriod: DefaultKeyUsagePeriod, Timeout: DefaultTimeout, Retries: DefaultRetries,
		BreakerCooldown: DefaultBreakerCooldown, AuditInterval: DefaultAuditInterval}
}

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// External reports whether timestamps come from external TSAs.
func (c *Config) External() bool { return len(c.URLs) > 0 }

// PolicyOID parses Policy; "" gives nil.
func (c *Config) PolicyOID() (asn1.ObjectIdentifier, error) {
	if c.Policy == "" {
		return nil, nil
	}
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(c.Policy, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a dotted OID", c.Policy)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", c.Policy)
	}
	return oid, nil
}

// RootPool reads Roots into a pool.
func (c *Config) RootPool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for i, f := range c.Roots {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, &config.FieldError{Field: fmt.Sprintf("roots[%d]", i), Msg: err.Error()}
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, &config.FieldError{Field: fmt.Sprintf("roots[%d]", i), Msg: f + " holds no PEM certificate"}
		}
	}
	return pool, nil
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if _, err := c.PolicyOID(); err != nil {
		bad("policy", "%v", err)
	}
	if c.External() {
		for i, raw := range c.URLs {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(fmt.Sprintf("urls[%d]", i), "not an absolute http(s) URL")
			}
		}
		if len(c.Roots) == 0 {
			bad("roots", "must list the PEM files of the CAs the TSAs chain to when urls is set")
		} else if _, err := c.RootPool(); err != nil {
			errs = append(errs, err)
		}
		if c.Timeout <= 0 {
			bad("timeout", "must be > 0")
		}
		if c.Retries < 0 {
			bad("retries", "must be >= 0")
		}
		if c.BreakerCooldown <= 0 {
			bad("breaker_cooldown", "must be > 0")
		}
	} else {
		if len(c.Roots) > 0 {
			bad("roots", "needs urls: the built-in TSA chains to the built-in CA")
		}
		if c.Accuracy <= 0 {
			bad("accuracy", "must be > 0")
		}
		if _, err := keystore.ParseType(string(c.KeyType)); err != nil || c.KeyType == "" {
			bad("key_type", "%q: want ec-p256, ec-p384, rsa-2048 or rsa-3072", c.KeyType)
		}
		if c.SerialBlock < 1 {
			bad("serial_block", "must be >= 1")
		}
		if c.KeyUsagePeriod < time.Hour {
			bad("key_usage_period", "must be at least 1h")
		}
		if c.AuditInterval < time.Second || c.AuditInterval > 24*time.Hour {
			bad("audit_interval", "must be 1s to 24h")
		}
	}
	return errors.Join(errs...)
}
