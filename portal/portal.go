package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/store"
)

// Sentinel errors callers tell apart with errors.Is.
var (
	ErrInvalid         = errs.Sentinel(errs.Invalid, "invalid_portal", "invalid portal")
	ErrNotFound        = errs.Sentinel(errs.NotFound, "portal_not_found", "portal not found")
	ErrUnauthenticated = errs.Sentinel(errs.Unauthenticated, "portal_unauthenticated", "portal credentials not recognised")
	ErrDisabled        = errs.Sentinel(errs.Denied, "portal_disabled", "portal disabled")
	ErrConflict        = errs.Sentinel(errs.Conflict, "portal_exists", "portal already exists (name or certificate already registered)")
)

// Defaults of a portal's limits.
const (
	DefaultMaxDocuments = 50
	DefaultMaxDocBytes  = 8 << 20
	DefaultRatePerMin   = 120
	// MaxRedirectURLs bounds the allow-list so one portal cannot make it a
	// wildcard by listing everything.
	MaxRedirectURLs = 32
	apiKeyBytes     = 32
	callbackKeyLen  = 32
)

// FieldError is bad input, naming the field and why.
type FieldError struct {
	Field string
	Msg   string
}

// Error names the field and the problem.
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// As gives the edges an *errs.Error naming the field.
func (e *FieldError) As(target any) bool {
	p, ok := target.(**errs.Error)
	if ok {
		*p = &errs.Error{Kind: errs.Invalid, Code: ErrInvalid.Code, Field: e.Field, Detail: e.Error()}
	}
	return ok
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Limits are what one portal may ask for. Zero fields take the defaults.
type Limits struct {
	MaxDocuments int   // documents per transaction
	MaxDocBytes  int64 // bytes per whole document
	RatePerMin   int   // transactions created per minute
}

// Spec describes a portal to register or change.
type Spec struct {
	Name         string
	RedirectURLs []string
	// CertSHA256 is the hex SHA-256 of the portal's client certificate
	// (DER), colons allowed; "" for none.
	CertSHA256 string
	// IssueAPIKey asks for an API key (shown once). A portal needs an API key,
	// a certificate or both.
	IssueAPIKey bool
	Limits      Limits
	CallbackURL string // "" for none; a callback key is then issued
}

// Created is a newly registered portal and its secrets, shown once.
type Created struct {
	Portal      *store.Portal
	APIKey      string // "" if none was asked for
	CallbackKey string // hex; "" without a callback URL
}

// Options configures a Registry; every field is optional.
type Options struct {
	Log   *slog.Logger
	Clock func() time.Time
	// AllowHTTP allows http:// redirect and callback URLs on hosts other
	// than loopback; only for development.
	AllowHTTP bool
}

// Registry registers and authenticates portals.
type Registry struct {
	st  store.PortalStore
	opt Options
	log *slog.Logger
	now func() time.Time
}

// New returns a registry on st.
func New(st store.PortalStore, opt Options) *Registry {
	r := &Registry{st: st, opt: opt, log: opt.Log, now: opt.Clock}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// Create registers a portal and returns its secrets, which are not kept
// in clear (the API key) or never shown again (the callback key).
func (r *Registry) Create(ctx context.Context, s Spec) (*Created, error) {
	p, err := r.check(s)
	if err != nil {
		return nil, err
	}
	if p.ID, err = newID(); err != nil {
		return nil, err
	}
	now := r.now().UTC()
	p.Status, p.CreatedAt, p.UpdatedAt = store.PortalActive, now, now
	out := &Created{Portal: p}
	if s.IssueAPIKey {
		key, hash, err := newAPIKey(p.ID)
		if err != nil {
			return nil, err
		}
		out.APIKey, p.APIKeyHash = key, hash
	}
	if p.APIKeyHash == nil && p.CertSHA256 == nil {
		return nil, &FieldError{"credentials", "give a client certificate fingerprint, ask for an API key, or both"}
	}
	if p.CallbackURL != "" {
		k := make([]byte, callbackKeyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("callback key: %w", err)
		}
		p.CallbackKey, out.CallbackKey = k, hex.EncodeToString(k)
	}
	if err := r.st.CreatePortal(ctx, p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("portal %q: %w", p.Name, ErrConflict)
		}
		return nil, fmt.Errorf("create portal: %w", err)
	}
	r.log.InfoContext(ctx, "portal registered", "portal", p.ID, "name", p.Name, "api_key", s.IssueAPIKey, "cert", p.CertSHA256 != nil)
	return out, nil
}

// Update changes a portal's name, allow-list, certificate, limits and
// callback URL; its keys stay as they are (see RotateAPIKey and
// RotateCallbackKey). A new callback URL on a portal without a key gets
// one, returned in hex; otherwise the returned key is "".
func (r *Registry) Update(ctx context.Context, id string, s Spec) (*store.Portal, string, error) {
	old, err := r.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	p, err := r.check(s)
	if err != nil {
		return nil, "", err
	}
	p.ID, p.Status, p.CreatedAt, p.UpdatedAt = old.ID, old.Status, old.CreatedAt, r.now().UTC()
	p.APIKeyHash, p.CallbackKey = old.APIKeyHash, old.CallbackKey
	if p.APIKeyHash == nil && p.CertSHA256 == nil {
		return nil, "", &FieldError{"cert_sha256", "the portal has no API key, so it needs a certificate"}
	}
	var newKey string
	if p.CallbackURL == "" {
		p.CallbackKey = nil
	} else if p.CallbackKey == nil {
		k := make([]byte, callbackKeyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, "", fmt.Errorf("callback key: %w", err)
		}
		p.CallbackKey, newKey = k, hex.EncodeToString(k)
	}
	if err := r.st.UpdatePortal(ctx, p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, "", fmt.Errorf("portal %q: %w", p.Name, ErrConflict)
		}
		return nil, "", fmt.Errorf("update portal %s: %w", id, err)
	}
	r.log.InfoContext(ctx, "portal updated", "portal", p.ID)
	return p, newKey, nil
}

// RotateAPIKey replaces the portal's API key; the old one stops working
// at once. The new key is shown once.
func (r *Registry) RotateAPIKey(ctx context.Context, id string) (string, error) {
	p, err := r.Get(ctx, id)
	if err != nil {
		return "", err
	}
	key, hash, err := newAPIKey(p.ID)
	if err != nil {
		return "", err
	}
	p.APIKeyHash, p.UpdatedAt = hash, r.now().UTC()
	if err := r.st.UpdatePortal(ctx, p); err != nil {
		return "", fmt.Errorf("rotate api key of %s: %w", id, err)
	}
	r.log.InfoContext(ctx, "portal api key rotated", "portal", p.ID)
	return key, nil
}

// RotateCallbackKey replaces the portal's callback HMAC key, returned in
// hex once.
func (r *Registry) RotateCallbackKey(ctx context.Context, id string) (string, error) {
	p, err := r.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if p.CallbackURL == "" {
		return "", &FieldError{"callback_url", "the portal has no callback URL"}
	}
	k := make([]byte, callbackKeyLen)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("callback key: %w", err)
	}
	p.CallbackKey, p.UpdatedAt = k, r.now().UTC()
	if err := r.st.UpdatePortal(ctx, p); err != nil {
		return "", fmt.Errorf("rotate callback key of %s: %w", id, err)
	}
	r.log.InfoContext(ctx, "portal callback key rotated", "portal", p.ID)
	return hex.EncodeToString(k), nil
}

// SetStatus enables (store.PortalActive) or disables a portal; a disabled
// portal cannot authenticate.
func (r *Registry) SetStatus(ctx context.Context, id, status string) (*store.Portal, error) {
	if status != store.PortalActive && status != store.PortalDisabled {
		return nil, &FieldError{"status", fmt.Sprintf("%q: want active or disabled", status)}
	}
	p, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	p.Status, p.UpdatedAt = status, r.now().UTC()
	if err := r.st.UpdatePortal(ctx, p); err != nil {
		return nil, fmt.Errorf("portal %s: %w", id, err)
	}
	r.log.InfoContext(ctx, "portal status changed", "portal", p.ID, "status", status)
	return p, nil
}

// Get returns a portal by ID.
func (r *Registry) Get(ctx context.Context, id string) (*store.Portal, error) {
	if !validID(id) {
		return nil, fmt.Errorf("portal %q: %w", id, ErrNotFound)
	}
	p, err := r.st.Portal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("portal %s: %w", id, ErrNotFound)
	}
	return p, err
}

// List lists portals ordered by ID.
func (r *Registry) List(ctx context.Context, after string, limit int) ([]*store.Portal, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return r.st.Portals(ctx, after, limit)
}

// AuthenticateAPIKey returns the active portal the API key belongs to.
// The key names its portal, so the lookup is by ID and the comparison of
// hashes is in constant time; every failure is ErrUnauthenticated.
func (r *Registry) AuthenticateAPIKey(ctx context.Context, key string) (*store.Portal, error) {
	id, _, ok := strings.Cut(key, ".")
	if !ok || !validID(id) {
		return nil, ErrUnauthenticated
	}
	p, err := r.st.Portal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate portal: %w", err)
	}
	sum := sha256.Sum256([]byte(key))
	if p.APIKeyHash == nil || subtle.ConstantTimeCompare(sum[:], p.APIKeyHash) != 1 {
		return nil, ErrUnauthenticated
	}
	if p.Status != store.PortalActive {
		return nil, fmt.Errorf("portal %s: %w", p.ID, ErrDisabled)
	}
	return p, nil
}

// AuthenticateCert returns the active portal whose client certificate has
// the SHA-256 sum (of its DER). The caller must have verified the TLS
// chain.
func (r *Registry) AuthenticateCert(ctx context.Context, sum []byte) (*store.Portal, error) {
	if len(sum) != sha256.Size {
		return nil, ErrUnauthenticated
	}
	p, err := r.st.PortalByCert(ctx, sum)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate portal: %w", err)
	}
	if subtle.ConstantTimeCompare(sum, p.CertSHA256) != 1 {
		return nil, ErrUnauthenticated
	}
	if p.Status != store.PortalActive {
		return nil, fmt.Errorf("portal %s: %w", p.ID, ErrDisabled)
	}
	return p, nil
}

// RedirectAllowed reports whether u is exactly one of the portal's
// allowed redirect URLs. No prefix or pattern matching: that is how open
// redirects start.
func RedirectAllowed(p *store.Portal, u string) bool {
	return u != "" && slices.Contains(p.RedirectURLs, u)
}

// EffectiveLimits returns the portal's limits with defaults filled in.
func EffectiveLimits(p *store.Portal) Limits {
	l := Limits{MaxDocuments: p.MaxDocuments, MaxDocBytes: p.MaxDocBytes, RatePerMin: p.RatePerMin}
	if l.MaxDocuments <= 0 {
		l.MaxDocuments = DefaultMaxDocuments
	}
	if l.MaxDocBytes <= 0 {
		l.MaxDocBytes = DefaultMaxDocBytes
	}
	if l.RatePerMin <= 0 {
		l.RatePerMin = DefaultRatePerMin
	}
	return l
}

// MaxName is the longest portal name, in characters: short enough for
// citizens' SMS notices to name the portal in full.
const MaxName = 100

// check validates a spec and returns the portal it describes, without ID,
// status, keys or times.
func (r *Registry) check(s Spec) (*store.Portal, error) {
	name := strings.TrimSpace(s.Name)
	if name == "" || utf8.RuneCountInString(name) > MaxName {
		return nil, &FieldError{"name", fmt.Sprintf("is required, at most %d characters", MaxName)}
	}
	if len(s.RedirectURLs) == 0 {
		return nil, &FieldError{"redirect_urls", "at least one URL is required"}
	}
	if len(s.RedirectURLs) > MaxRedirectURLs {
		return nil, &FieldError{"redirect_urls", fmt.Sprintf("at most %d URLs", MaxRedirectURLs)}
	}
	p := &store.Portal{Name: name}
	for i, u := range s.RedirectURLs {
		if err := r.checkURL(u); err != nil {
			return nil, &FieldError{fmt.Sprintf("redirect_urls[%d]", i), err.Error()}
		}
		if !slices.Contains(p.RedirectURLs, u) {
			p.RedirectURLs = append(p.RedirectURLs, u)
		}
	}
	if s.CertSHA256 != "" {
		b, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s.CertSHA256), ":", "")))
		if err != nil || len(b) != sha256.Size {
			return nil, &FieldError{"cert_sha256", "must be 64 hex digits (the SHA-256 of the certificate DER)"}
		}
		p.CertSHA256 = b
	}
	if s.CallbackURL != "" {
		if err := r.checkURL(s.CallbackURL); err != nil {
			return nil, &FieldError{"callback_url", err.Error()}
		}
		p.CallbackURL = s.CallbackURL
	}
	l := s.Limits
	switch {
	case l.MaxDocuments < 0 || l.MaxDocuments > 1000:
		return nil, &FieldError{"max_documents", "must be 0 (default) to 1000"}
	case l.MaxDocBytes < 0 || l.MaxDocBytes > 1<<30:
		return nil, &FieldError{"max_document_bytes", "must be 0 (default) to 1 GiB"}
	case l.RatePerMin < 0 || l.RatePerMin > 1_000_000:
		return nil, &FieldError{"rate_per_minute", "must be 0 (default) to 1000000"}
	}
	p.MaxDocuments, p.MaxDocBytes, p.RatePerMin = l.MaxDocuments, l.MaxDocBytes, l.RatePerMin
	return p, nil
}

// checkURL accepts absolute https URLs (http on loopback, or anywhere with
// AllowHTTP) without user info or fragment.
func (r *Registry) checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q: no user info or fragment allowed", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !r.opt.AllowHTTP && !loopback(u.Hostname()) {
			return fmt.Errorf("%q: https is required (http only on loopback)", s)
		}
	default:
		return fmt.Errorf("%q: scheme must be https", s)
	}
	if len(s) > 2048 {
		return fmt.Errorf("URL longer than 2048 characters")
	}
	return nil
}

func loopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// newID is a FIRe-style application id: 12 upper-case hex digits.
func newID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("portal id: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

func validID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// newAPIKey makes "<portal id>.<43 base64url chars>": 32 random bytes, so
// a plain SHA-256 is enough to store it (nothing to brute-force).
func newAPIKey(id string) (string, []byte, error) {
	b := make([]byte, apiKeyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("api key: %w", err)
	}
	key := id + "." + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	return key, sum[:], nil
}
