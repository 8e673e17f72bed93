package transaction

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/signer"
)

// SectionName is the top-level key of Config in firmad.yaml.
const SectionName = "transactions"

// Config is the `transactions:` section of firmad.yaml. Every field has
// a FIRMA_TRANSACTIONS_<FIELD> environment override. Secrets (the OTP key,
// the SMS provider credential) are never in the file: only the paths of
// files that hold them.
type Config struct {
	// PublicURL is the citizens' view of firmad's HTTP listener; approval
	// links are PublicURL/sign/<id>. Empty: http://<listen.http>.
	PublicURL string `yaml:"public_url"`
	// TTL is how long a transaction waits for approval.
	TTL time.Duration `yaml:"ttl"`
	// Retention is how long documents and signed results are kept after
	// a transaction ends; portals collect them before.
	Retention time.Duration `yaml:"retention"`
	// OTP limits: validity, resends and their spacing.
	OTPTTL        time.Duration `yaml:"otp_ttl"`
	OTPMaxResends int           `yaml:"otp_max_resends"`
	OTPResendGap  time.Duration `yaml:"otp_resend_gap"`
	// The one wrong-code rule (policy.AttemptRules), for every code a
	// citizen types: signature codes on the approval page and in the CSC
	// API (counted together on the citizen's channel, whatever the portal
	// or transaction) and registration SMS codes (counted on their own).
	// OTPMaxTries wrong codes, each less than OTPFailureWindow after the
	// last, lock for OTPLockout; a right code starts the count again.
	OTPMaxTries      int           `yaml:"otp_max_tries"`
	OTPFailureWindow time.Duration `yaml:"otp_failure_window"`
	OTPLockout       time.Duration `yaml:"otp_lockout"`
	// OTPKeyFile holds the key (hex, at least 32 bytes, the same on every
	// node) that the stored OTP and session hashes are keyed with. Empty:
	// the key is derived from an RSA key in the HSM (DeriveOTPKey).
	OTPKeyFile string `yaml:"otp_key_file"`
	// CallbackAttempts is how often a portal callback is tried.
	CallbackAttempts int `yaml:"callback_attempts"`
	// CallbackTimeout bounds one callback request.
	CallbackTimeout time.Duration `yaml:"callback_timeout"`
	// MaxRequestBytes bounds a REST creation request (base64 documents).
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// SignWorkers is how many transactions this node signs at once, off
	// the citizen's approving request; SignQueue how many approved ones
	// wait here for a worker (more wait in the store for the resume
	// scan); SignLease how long a worker keeps a transaction after its
	// last stored document before another worker or node may take it
	// over. The lease must outlast one document's worst case (a B-T
	// timestamp over a slow TSA).
	SignWorkers int           `yaml:"sign_workers"`
	SignQueue   int           `yaml:"sign_queue"`
	SignLease   time.Duration `yaml:"sign_lease"`
	// SignExpiry is how long after the approval transient faults (HSM,
	// audit log) are waited out; then the transaction expires.
	SignExpiry time.Duration `yaml:"sign_expiry"`
	// UpgradeGrace is how long after its signature timestamp a signature
	// may be raised to B-LT or B-LTA (POST /api/v1/signatures/upgrade), so
	// that a revocation made before it has reached OCSP and CRLs; 0 (the
	// default) means at once.
	UpgradeGrace time.Duration `yaml:"upgrade_grace"`
	// SignaturePolicies are the signature policies (EPES) documents may
	// name, by key, besides FirmaAGE, which is built in. File only.
	SignaturePolicies map[string]PolicyConfig `yaml:"signature_policies"`
	// PortalPolicies maps a portal ID to the policy its documents get when
	// they name none: FirmaAGE or a key of SignaturePolicies. File only.
	PortalPolicies map[string]string `yaml:"portal_policies"`
	// Retimestamp renews the archive timestamps of stored B-LTA results.
	Retimestamp RetimestampConfig `yaml:"retimestamp"`
	// AllowHTTPPortals lets portals register plain-http redirect and
	// callback URLs off loopback; development only.
	AllowHTTPPortals bool `yaml:"allow_http_portals"`
	// SMS is the gateway the one-time passwords go through.
	SMS SMSConfig `yaml:"sms"`
}

// PolicyConfig is one signature policy: its identifier (dotted OID), the
// hash of its document (base64) under HashAlgorithm (sha1, sha256,
// sha384 or sha512), and where the document is published.
type PolicyConfig struct {
	OID           string `yaml:"oid"`
	HashAlgorithm string `yaml:"hash_algorithm"`
	Hash          string `yaml:"hash"`
	URI           string `yaml:"uri"`
}

// Policies returns SignaturePolicies parsed, for Options.Policies.
func (c *Config) Policies() (map[string]*signer.Policy, error) {
	out := make(map[string]*signer.Policy, len(c.SignaturePolicies))
	for name, p := range c.SignaturePolicies {
		sp, err := signer.ParsePolicy(p.OID, p.HashAlgorithm, p.Hash, p.URI)
		if err != nil {
			return nil, &config.FieldError{Field: "signature_policies." + name, Msg: err.Error()}
		}
		out[name] = sp
	}
	return out, nil
}

// SMSConfig selects the SMS gateway.
type SMSConfig struct {
	// Gateway is "outbox" (keep messages in the store; development and
	// sandbox) or "http" (a provider's HTTP API).
	Gateway    string `yaml:"gateway"`
	URL        string `yaml:"url"`
	AuthHeader string `yaml:"auth_header"`
	// AuthFile holds the auth header's value (e.g. "Bearer ..."), a secret.
	AuthFile string        `yaml:"auth_file"`
	From     string        `yaml:"from"`
	Timeout  time.Duration `yaml:"timeout"`
	Retries  int           `yaml:"retries"`
}

// DefaultConfig is the section's defaults.
func DefaultConfig() Config {
	r, a := policy.DefaultOTPRules(), policy.DefaultAttemptRules()
	return Config{TTL: DefaultTTL, Retention: DefaultRetention, OTPTTL: r.TTL, OTPMaxResends: r.MaxResends, OTPResendGap: r.ResendGap,
		OTPMaxTries: a.MaxFailures, OTPFailureWindow: a.Window, OTPLockout: a.Lockout,
		CallbackAttempts: DefaultCallbackAttempts, CallbackTimeout: 10 * time.Second, MaxRequestBytes: DefaultMaxBody,
		SignWorkers: DefaultSignWorkers, SignQueue: DefaultSignQueue, SignLease: DefaultSignLease,
		SignExpiry:  DefaultSignExpiry,
		Retimestamp: RetimestampConfig{Interval: DefaultRetimestampInterval, Margin: DefaultRetimestampMargin},
		SMS:         SMSConfig{Gateway: "outbox", Timeout: 5 * time.Second, Retries: 3}}
}

func init() {
	config.RegisterSection(SectionName, func() any { c := DefaultConfig(); return &c })
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, &config.FieldError{Field: field, Msg: msg}) }
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			bad("public_url", "must be an absolute http(s) URL")
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{{"ttl", c.TTL, time.Minute}, {"retention", c.Retention, time.Hour}, {"otp_ttl", c.OTPTTL, 30 * time.Second}, {"otp_resend_gap", c.OTPResendGap, time.Second},
		{"callback_timeout", c.CallbackTimeout, time.Second}, {"sign_lease", c.SignLease, time.Second},
		{"sign_expiry", c.SignExpiry, time.Minute},
		{"otp_failure_window", c.OTPFailureWindow, time.Minute}, {"otp_lockout", c.OTPLockout, time.Minute}} {
		if d.v < d.min {
			bad(d.name, fmt.Sprintf("must be at least %s", d.min))
		}
	}
	for name, p := range c.SignaturePolicies {
		if strings.EqualFold(name, signer.PolicyNameAGE) || strings.EqualFold(name, PolicyNone) || name == "" {
			bad("signature_policies."+name, "the name is taken: FirmaAGE is built in and none means no policy")
		} else if _, err := signer.ParsePolicy(p.OID, p.HashAlgorithm, p.Hash, p.URI); err != nil {
			bad("signature_policies."+name, err.Error())
		}
	}
	for portalID, name := range c.PortalPolicies {
		if _, ok := c.SignaturePolicies[name]; !ok && !strings.EqualFold(name, signer.PolicyNameAGE) && !strings.EqualFold(name, PolicyNone) {
			bad("portal_policies."+portalID, fmt.Sprintf("%q is neither FirmaAGE, none nor a key of signature_policies", name))
		}
	}
	if c.UpgradeGrace < 0 || c.UpgradeGrace > 7*24*time.Hour {
		bad("upgrade_grace", "must be 0 to 168h")
	}
	if c.Retimestamp.Enabled {
		c.Retimestamp.validate(bad)
	}
	if c.OTPTTL > c.TTL {
		bad("otp_ttl", "must not be longer than ttl")
	}
	if c.OTPMaxTries < 1 || c.OTPMaxTries > 10 {
		bad("otp_max_tries", "must be 1 to 10")
	}
	if c.OTPFailureWindow > 24*time.Hour {
		bad("otp_failure_window", "must be at most 24h")
	}
	if c.OTPLockout > 24*time.Hour {
		bad("otp_lockout", "must be at most 24h")
	}
	if c.OTPMaxResends < 0 || c.OTPMaxResends > 10 {
		bad("otp_max_resends", "must be 0 to 10")
	}
	if c.CallbackAttempts < 1 || c.CallbackAttempts > 50 {
		bad("callback_attempts", "must be 1 to 50")
	}
	if c.SignWorkers < 1 || c.SignWorkers > 64 {
		bad("sign_workers", "must be 1 to 64")
	}
	if c.SignQueue < 1 || c.SignQueue > 10000 {
		bad("sign_queue", "must be 1 to 10000")
	}
	if c.SignLease > time.Hour {
		bad("sign_lease", "must be at most 1h")
	}
	if c.SignExpiry > 7*24*time.Hour {
		bad("sign_expiry", "must be at most 168h")
	}
	if c.MaxRequestBytes < 1<<10 {
		bad("max_request_bytes", "must be at least 1024")
	}
	switch c.SMS.Gateway {
	case "outbox":
	case "http":
		if u, err := url.Parse(c.SMS.URL); err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") {
			bad("sms.url", "the http gateway needs the provider's absolute URL")
		}
		if (c.SMS.AuthHeader == "") != (c.SMS.AuthFile == "") {
			bad("sms.auth_file", "give both auth_header and auth_file, or neither")
		}
		if c.SMS.Timeout <= 0 {
			bad("sms.timeout", "must be positive")
		}
		if c.SMS.Retries < 0 || c.SMS.Retries > 10 {
			bad("sms.retries", "must be 0 to 10")
		}
	default:
		bad("sms.gateway", fmt.Sprintf("%q: want outbox or http", c.SMS.Gateway))
	}
	return errors.Join(errs...)
}

// Rules are the OTP rules the section sets.
func (c *Config) Rules() policy.OTPRules {
	r := policy.OTPRules{TTL: c.OTPTTL, MaxResends: c.OTPMaxResends, ResendGap: c.OTPResendGap}
	if c.OTPMaxResends == 0 {
		r.MaxResends = -1 // WithDefaults reads 0 as "default"; the section means none
	}
	return r
}

// AttemptRules is the wrong-code rule the section sets, for the signature
// codes of every way in and the registration codes alike.
func (c *Config) AttemptRules() policy.AttemptRules {
	return policy.AttemptRules{MaxFailures: c.OTPMaxTries, Window: c.OTPFailureWindow, Lockout: c.OTPLockout}
}
