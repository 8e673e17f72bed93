package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Sentinel errors callers tell apart with errors.Is.
var (
	ErrNotInitialised = errs.Sentinel(errs.FailedPrecondition, "ca_not_initialised", "certificate authority not initialised: run 'firmactl init'")
	// ErrNotAdvanced is wrapped together with the *policy.Refusal that says
	// how to reach the advanced level.
	ErrNotAdvanced = errs.Sentinel(errs.FailedPrecondition, "advanced_level_required", "advanced registration level required")
	// ErrInactive is wrapped with the *policy.Refusal for a locked or
	// removed citizen.
	ErrInactive           = errs.Sentinel(errs.FailedPrecondition, "citizen_inactive", "citizen registration not active")
	ErrUnknownCitizen     = errs.Sentinel(errs.NotFound, "citizen_not_found", "citizen not registered")
	ErrNotFound           = errs.Sentinel(errs.NotFound, "certificate_not_found", "certificate not found")
	ErrAlreadyRevoked     = errs.Sentinel(errs.FailedPrecondition, "certificate_revoked", "certificate already revoked")
	ErrPending            = errs.Sentinel(errs.FailedPrecondition, "certificate_pending", "certificate requested from the external CA and not yet imported")
	ErrKeyMismatch        = errs.Sentinel(errs.Invalid, "certificate_key_mismatch", "certificate does not certify the HSM key")
	ErrBadCertificate     = errs.Sentinel(errs.Invalid, "bad_certificate", "bad certificate")
	ErrBadReason          = errs.Sentinel(errs.Invalid, "bad_revocation_reason", "bad revocation reason")
	ErrWrongMode          = errs.Sentinel(errs.FailedPrecondition, "ca_wrong_mode", "not available in this certificate mode")
	ErrAlreadyInitialised = errs.Sentinel(errs.Conflict, "ca_already_initialised", "certificate authority already set up")
	ErrExists             = errs.Sentinel(errs.Conflict, "certificate_exists", "citizen already has a valid certificate; renew it instead")
)

// Authority names in the store.
const (
	nameRoot    = "root"
	nameIssuing = "issuing"
	nameOCSP    = "ocsp"
	// issuerExternal marks citizen certificates an outside CA issued.
	issuerExternal = "external"
)

// Key owners of the system keys in the keystore.
const (
	OwnerRoot    = "system:ca-root"
	OwnerIssuing = "system:ca-issuing"
	OwnerOCSP    = "system:ca-ocsp"
)

// Modes of citizen certificate issuance.
const (
	ModeInternal = "internal" // the issuing CA here signs citizen certificates
	ModeExternal = "external" // an outside CA signs them from CSRs exported here
)

// Citizens looks citizens up in the registry; *registry.Service is one.
// Citizen returns an error wrapping store.ErrNotFound, ErrUnknownCitizen or
// the registry's own not-found error when there is no such citizen.
type Citizens interface {
	Citizen(ctx context.Context, id string) (*store.Citizen, error)
}

// Keys is the part of the keystore the CA uses.
type Keys interface {
	Generate(ctx context.Context, owner string, t keystore.Type) (*keystore.Key, error)
	GenerateMode(ctx context.Context, owner string, t keystore.Type, m keystore.Mode) (*keystore.Key, error)
	Key(ctx context.Context, id string) (*keystore.Key, error)
	Keys(ctx context.Context, owner, after string, limit int) ([]*keystore.Key, error)
	Destroy(ctx context.Context, id string) error
	Signer(ctx context.Context, id string) (*keystore.Signer, error)
}

var _ Keys = (*keystore.HSM)(nil)

// Config sets names, lifetimes and publication URLs.
type Config struct {
	// Mode is ModeInternal (default) or ModeExternal.
	Mode string `yaml:"mode,omitempty"`
	// BaseURL is the public URL of firmad's HTTP listener; the CRL
	// distribution point, OCSP and CA issuers URLs in certificates are
	// built on it. Required to issue.
	BaseURL string `yaml:"base_url,omitempty"`

	Country                string `yaml:"country,omitempty"`                 // of the CAs; default "ES"
	Organization           string `yaml:"organization,omitempty"`            // default "Firma Cloud"
	OrganizationIdentifier string `yaml:"organization_identifier,omitempty"` // ETSI EN 319 412-1, e.g. "VATES-Q0000000J"; optional
	RootName               string `yaml:"root_name,omitempty"`               // root CA common name
	IssuingName            string `yaml:"issuing_name,omitempty"`            // issuing CA common name

	RootKeyType    keystore.Type `yaml:"root_key_type,omitempty"`    // default ECP384
	IssuingKeyType keystore.Type `yaml:"issuing_key_type,omitempty"` // default ECP384
	CitizenKeyType keystore.Type `yaml:"citizen_key_type,omitempty"` // default ECP256

	RootValidity    time.Duration `yaml:"root_validity,omitempty"`    // default 20 years
	IssuingValidity time.Duration `yaml:"issuing_validity,omitempty"` // default 10 years
	CitizenValidity time.Duration `yaml:"citizen_validity,omitempty"` // default 2 years
	OCSPValidity    time.Duration `yaml:"ocsp_validity,omitempty"`    // responder certificate; default 90 days

	// Policies are the certificate policy OIDs put in citizen
	// certificates, dotted; default ETSI NCP (0.4.0.2042.1.1).
	Policies []string `yaml:"policies,omitempty"`
	// QCStatements adds ETSI EN 319 412-5 statements (QcCompliance and
	// QcType esign) to citizen certificates; only for a qualified service.
	QCStatements bool `yaml:"qc_statements,omitempty"`

	CRLValidity  time.Duration `yaml:"crl_validity,omitempty"`   // nextUpdate - thisUpdate; default 24h
	CRLInterval  time.Duration `yaml:"crl_interval,omitempty"`   // scheduled refresh; default 1h
	OCSPMaxAge   time.Duration `yaml:"ocsp_max_age,omitempty"`   // nextUpdate of OCSP responses; default 1h
	OCSPCacheTTL time.Duration `yaml:"ocsp_cache_ttl,omitempty"` // reuse of a signed response; default 1m, negative disables
	// OCSPUnknownRate bounds the signed "unknown" answers per second
	// (serials never issued here); past it the responder answers
	// tryLater, unsigned. Default 20, negative means no limit.
	OCSPUnknownRate float64 `yaml:"ocsp_unknown_rate,omitempty"`
	// OCSPNonceRate bounds the responses signed afresh per second to echo
	// a request's nonce; past it the cached response, without nonce, is
	// sent. Default 50, negative means no limit.
	OCSPNonceRate float64 `yaml:"ocsp_nonce_rate,omitempty"`

	// ExternalIssuersFile is a PEM file of the CA certificates allowed to
	// sign imported citizen certificates (external mode); LoadExternalIssuers
	// reads it into ExternalIssuers.
	ExternalIssuersFile string `yaml:"external_issuers_file,omitempty"`
	// ExternalIssuers, in external mode, are the CA certificates allowed to
	// sign imported citizen certificates; empty accepts any issuer.
	ExternalIssuers []*x509.Certificate `yaml:"-"`

	// Audit, if set, records every key generated, used or destroyed and
	// every certificate issued or revoked, before the result is kept or
	// handed out; when it fails the operation is refused.
	Audit Auditor `yaml:"-"`
}

// LoadExternalIssuers reads ExternalIssuersFile, if set, into
// ExternalIssuers.
func (c *Config) LoadExternalIssuers() error {
	if c.ExternalIssuersFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.ExternalIssuersFile)
	if err != nil {
		return cfgErr("external_issuers_file", "", err, "external issuers: %v", err)
	}
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return cfgErr("external_issuers_file", "", err, "external issuers %s: %v", c.ExternalIssuersFile, err)
		}
		c.ExternalIssuers = append(c.ExternalIssuers, cert)
	}
	if len(c.ExternalIssuers) == 0 {
		return cfgErr("external_issuers_file", "", nil, "external issuers %s: no PEM certificate", c.ExternalIssuersFile)
	}
	return nil
}

// configError is a settings error of defaults or LoadExternalIssuers. It
// names its YAML key, so Validate needs not read the message; its text is
// "ca config: " + prefix + msg, as the errors always read.
type configError struct {
	field, prefix, msg string
	err                error
}

func (e *configError) Error() string { return "ca config: " + e.prefix + e.msg }
func (e *configError) Unwrap() error { return e.err }

func cfgErr(field, prefix string, cause error, format string, args ...any) error {
	return &configError{field: field, prefix: prefix, msg: fmt.Sprintf(format, args...), err: cause}
}

func (c *Config) defaults() error {
	if c.Mode == "" {
		c.Mode = ModeInternal
	}
	if c.Mode != ModeInternal && c.Mode != ModeExternal {
		return cfgErr("mode", "mode ", nil, "%q: want internal or external", c.Mode)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfgErr("base_url", "base URL ", nil, "%q: want an absolute http(s) URL", c.BaseURL)
		}
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Country, "ES")
	def(&c.Organization, "Firma Cloud")
	def(&c.RootName, c.Organization+" Root CA")
	def(&c.IssuingName, c.Organization+" Issuing CA 1")
	if len(c.Country) != 2 {
		return cfgErr("country", "country ", nil, "%q: want a two-letter ISO 3166 code", c.Country)
	}
	for _, t := range []*keystore.Type{&c.RootKeyType, &c.IssuingKeyType, &c.CitizenKeyType} {
		def := keystore.ECP384
		if t == &c.CitizenKeyType {
			def = keystore.ECP256
		}
		if *t == "" {
			*t = def
		}
		if _, err := keystore.ParseType(string(*t)); err != nil {
			return cfgErr("ca", "", err, "%v", err)
		}
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	const day = 24 * time.Hour
	dur(&c.RootValidity, 20*365*day)
	dur(&c.IssuingValidity, 10*365*day)
	dur(&c.CitizenValidity, 2*365*day)
	dur(&c.OCSPValidity, 90*day)
	dur(&c.CRLValidity, day)
	dur(&c.CRLInterval, time.Hour)
	dur(&c.OCSPMaxAge, time.Hour)
	dur(&c.OCSPCacheTTL, time.Minute)
	if c.OCSPNonceRate == 0 {
		c.OCSPNonceRate = 50
	}
	if c.OCSPUnknownRate == 0 {
		c.OCSPUnknownRate = 20
	}
	if len(c.Policies) == 0 {
		c.Policies = []string{"0.4.0.2042.1.1"}
	}
	for _, p := range c.Policies {
		if _, err := x509.ParseOID(p); err != nil {
			return cfgErr("policies", "policy ", err, "%q: %v", p, err)
		}
	}
	if c.CRLInterval >= c.CRLValidity {
		return cfgErr("crl_interval", "crl interval ", nil, "%s must be shorter than crl validity %s", c.CRLInterval, c.CRLValidity)
	}
	return nil
}

// authority is a loaded CA: its certificate and, when the key is here, a
// signer for it.
type authority struct {
	rec    *store.Authority
	cert   *x509.Certificate
	signer crypto.Signer // nil for an external root
}

// state is what Load read; swapped whole so readers never see a mix.
type state struct {
	root, issuing, ocsp *authority
}

// Authority issues and publishes citizen certificates.
type Authority struct {
	cfg      Config
	keys     Keys
	st       store.CAStore
	citizens Citizens
	log      *slog.Logger
	m        *metrics

	cur atomic.Pointer[state]

	// mu serialises changes to the CA set-up and CRL generation within the
	// process; the store's constraints guard against other replicas.
	mu sync.Mutex
	// owners serialises issuance per citizen, so that first-use requests
	// racing in one process generate one key, not several.
	owners keyedMutex

	cache *ocspCache
	// unknown limits signed answers about serials never issued here:
	// anyone can ask about random serials, and each answer would
	// otherwise cost an HSM signature and an audit record.
	unknown *rate.Limiter
	// nonced limits responses signed to echo a nonce, which the cache
	// cannot serve.
	nonced *rate.Limiter

	runMu sync.Mutex
	stop  chan struct{}
	done  chan struct{}
}

// New returns an Authority. Call Load (after Init on a fresh install)
// before issuing.
func New(cfg Config, keys Keys, st store.CAStore, citizens Citizens, log *slog.Logger, reg prometheus.Registerer) (*Authority, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authority{cfg: cfg, keys: keys, st: st, citizens: citizens, log: log, m: newMetrics(reg),
		owners: keyedMutex{m: map[string]*ownerLock{}}, cache: newOCSPCache(cfg.OCSPCacheTTL)}
	a.unknown = rate.NewLimiter(rate.Inf, 0)
	if cfg.OCSPUnknownRate > 0 {
		a.unknown = rate.NewLimiter(rate.Limit(cfg.OCSPUnknownRate), max(1, int(2*cfg.OCSPUnknownRate)))
	}
	a.nonced = rate.NewLimiter(rate.Inf, 0)
	if cfg.OCSPNonceRate > 0 {
		a.nonced = rate.NewLimiter(rate.Limit(cfg.OCSPNonceRate), max(1, int(2*cfg.OCSPNonceRate)))
	}
	a.cur.Store(&state{})
	return a, nil
}

// SetCitizens sets the registry after New, for wiring where the registry
// itself needs the Authority (as its revocation hook). Call it before the
// Authority is used.
func (a *Authority) SetCitizens(c Citizens) { a.citizens = c }

// Mode returns the citizen certificate mode.
func (a *Authority) Mode() string { return a.cfg.Mode }

// Root returns the root CA certificate, or nil before set-up.
func (a *Authority) Root() *x509.Certificate {
	if s := a.cur.Load(); s.root != nil {
		return s.root.cert
	}
	return nil
}

// Issuing returns the issuing CA certificate, or nil before set-up.
func (a *Authority) Issuing() *x509.Certificate {
	if s := a.cur.Load(); s.issuing != nil {
		return s.issuing.cert
	}
	return nil
}

// OCSPResponder returns the OCSP responder certificate, or nil.
func (a *Authority) OCSPResponder() *x509.Certificate {
	if s := a.cur.Load(); s.ocsp != nil {
		return s.ocsp.cert
	}
	return nil
}

// keyedMutex is a set of mutexes, one per key, dropped when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*ownerLock
}

type ownerLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &ownerLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// DefaultBaseURL is the publication URL used when none is configured: the
// HTTP listener's address, with the machine's host name in place of an
// unspecified address (0.0.0.0, ::), since certificates must name a host
// relying parties can reach.
func DefaultBaseURL(listenHTTP string) string {
	host, port, err := net.SplitHostPort(listenHTTP)
	if err != nil {
		return "http://" + listenHTTP
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
