package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Errors of revocation checking.
var (
	// ErrNoRevocationSource means the certificate names no OCSP responder
	// or CRL that can be fetched.
	ErrNoRevocationSource = errors.New("certificate names no OCSP responder or CRL")
	// ErrRevocationUnavailable means every source failed or answered
	// nothing usable.
	ErrRevocationUnavailable = errors.New("revocation status unavailable")
)

// RevocationStatus is what a responder or CRL says of a certificate.
type RevocationStatus string

// Revocation statuses.
const (
	Good    RevocationStatus = "good"
	Revoked RevocationStatus = "revoked"
	Unknown RevocationStatus = "unknown"
)

// Revocation is the current status of one certificate.
type Revocation struct {
	Status    RevocationStatus
	RevokedAt time.Time // when Status is Revoked
	Reason    int       // RFC 5280 CRLReason, when Status is Revoked
	Source    string    // "ocsp <url>" or "crl <url>", for the report
	// ThisUpdate and NextUpdate bound the information's validity.
	ThisUpdate, NextUpdate time.Time
}

// RevocationChecker reports the revocation status of cert, issued by
// issuer. Whether the certificate was revoked before the signature was
// made is decided by the caller from RevokedAt.
type RevocationChecker interface {
	Revocation(ctx context.Context, cert, issuer *x509.Certificate) (*Revocation, error)
}

// Checkers asks each checker in turn and returns the first answer.
type Checkers []RevocationChecker

var _ RevocationChecker = Checkers(nil)

// Revocation returns the first checker's answer that is not an error.
func (cs Checkers) Revocation(ctx context.Context, cert, issuer *x509.Certificate) (*Revocation, error) {
	var errs []error
	for _, c := range cs {
		r, err := c.Revocation(ctx, cert, issuer)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, ErrNoRevocationSource
	}
	return nil, errors.Join(errs...)
}

// OCSPResponder adapts an in-process OCSP responder, a function from a DER
// request to a DER response such as the ca package's RespondOCSP, to a
// RevocationChecker. The response is checked like one fetched over HTTP.
type OCSPResponder func(ctx context.Context, request []byte) ([]byte, error)

var _ RevocationChecker = OCSPResponder(nil)

// Revocation asks the responder about cert.
func (f OCSPResponder) Revocation(ctx context.Context, cert, issuer *x509.Certificate) (*Revocation, error) {
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("ocsp request: %w", err)
	}
	der, err := f(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("ocsp: %w: %w", ErrRevocationUnavailable, err)
	}
	return parseOCSP(der, cert, issuer, "ocsp (built-in)", time.Now())
}

// Defaults of Online.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxCRLBytes = 20 << 20
	maxOCSPBytes       = 64 << 10
)

// Online checks revocation over HTTP: OCSP at the certificate's
// AuthorityInfoAccess responders first, then its CRL distribution points.
// Responses are checked against the issuer before they are believed.
type Online struct {
	HTTP        *http.Client // nil means one with DefaultTimeout
	MaxCRLBytes int64        // 0 means DefaultMaxCRLBytes
	Now         func() time.Time
	// CacheTTL keeps answers that long, never past their NextUpdate, so a
	// busy verifier does not ask the same responder for the same
	// certificate on every call; 0 disables the cache. A revocation is
	// then seen up to CacheTTL late.
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	r       *Revocation
	expires time.Time
}

// maxCached bounds the cache; when full, expired entries go first and
// then the whole cache is dropped rather than tracking recency.
const maxCached = 10000

// defaultHTTP is shared so that connections to responders are reused.
var defaultHTTP = &http.Client{Timeout: DefaultTimeout}

var _ RevocationChecker = (*Online)(nil)

// Revocation returns the first usable answer from the certificate's
// sources.
func (o *Online) Revocation(ctx context.Context, cert, issuer *x509.Certificate) (*Revocation, error) {
	key := string(issuer.RawSubject) + "\x00" + string(issuer.SubjectKeyId) + "\x00" + cert.SerialNumber.String()
	if r := o.cached(key); r != nil {
		return r, nil
	}
	r, err := o.fetchStatus(ctx, cert, issuer)
	if err == nil {
		o.remember(key, r)
	}
	return r, err
}

func (o *Online) cached(key string) *Revocation {
	if o.CacheTTL <= 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.cache[key]
	if !ok || !o.now().Before(c.expires) {
		return nil
	}
	return c.r
}

func (o *Online) remember(key string, r *Revocation) {
	if o.CacheTTL <= 0 {
		return
	}
	now := o.now()
	exp := now.Add(o.CacheTTL)
	if !r.NextUpdate.IsZero() && r.NextUpdate.Before(exp) {
		exp = r.NextUpdate
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cache == nil {
		o.cache = map[string]cached{}
	}
	if len(o.cache) >= maxCached {
		for k, c := range o.cache {
			if !now.Before(c.expires) {
				delete(o.cache, k)
			}
		}
		if len(o.cache) >= maxCached {
			clear(o.cache)
		}
	}
	o.cache[key] = cached{r: r, expires: exp}
}

func (o *Online) fetchStatus(ctx context.Context, cert, issuer *x509.Certificate) (*Revocation, error) {
	var errs []error
	for _, u := range cert.OCSPServer {
		if !isHTTP(u) {
			continue
		}
		r, err := o.ocsp(ctx, u, cert, issuer)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	for _, u := range cert.CRLDistributionPoints {
		if !isHTTP(u) {
			continue
		}
		r, err := o.crl(ctx, u, cert, issuer)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, ErrNoRevocationSource
	}
	return nil, fmt.Errorf("%w: %w", ErrRevocationUnavailable, errors.Join(errs...))
}

func isHTTP(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https")
}

func (o *Online) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Online) client() *http.Client {
	if o.HTTP != nil {
		return o.HTTP
	}
	return defaultHTTP
}

func (o *Online) fetch(ctx context.Context, method, u, ctype string, body []byte, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := o.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("http %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response over %d bytes", limit)
	}
	return b, nil
}

func (o *Online) ocsp(ctx context.Context, u string, cert, issuer *x509.Certificate) (*Revocation, error) {
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("ocsp request: %w", err)
	}
	der, err := o.fetch(ctx, http.MethodPost, u, "application/ocsp-request", req, maxOCSPBytes)
	if err != nil {
		return nil, fmt.Errorf("ocsp %s: %w", u, err)
	}
	return parseOCSP(der, cert, issuer, "ocsp "+u, o.now())
}

// parseOCSP checks the response is signed by the issuer or by a responder
// the issuer delegated to, is about cert and is current.
func parseOCSP(der []byte, cert, issuer *x509.Certificate, source string, now time.Time) (*Revocation, error) {
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if resp.Certificate != nil && !bytes.Equal(resp.Certificate.Raw, issuer.Raw) {
		delegated := false
		for _, e := range resp.Certificate.ExtKeyUsage {
			delegated = delegated || e == x509.ExtKeyUsageOCSPSigning
		}
		if !delegated {
			return nil, fmt.Errorf("%s: responder certificate lacks id-kp-OCSPSigning", source)
		}
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		return nil, fmt.Errorf("%s: response expired at %s", source, resp.NextUpdate.Format(time.RFC3339))
	}
	r := &Revocation{Source: source, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate}
	switch resp.Status {
	case ocsp.Good:
		r.Status = Good
	case ocsp.Revoked:
		r.Status, r.RevokedAt, r.Reason = Revoked, resp.RevokedAt, resp.RevocationReason
	default:
		r.Status = Unknown
	}
	return r, nil
}

func (o *Online) crl(ctx context.Context, u string, cert, issuer *x509.Certificate) (*Revocation, error) {
	limit := o.MaxCRLBytes
	if limit <= 0 {
		limit = DefaultMaxCRLBytes
	}
	der, err := o.fetch(ctx, http.MethodGet, u, "", nil, limit)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", u, err)
	}
	if bytes.HasPrefix(bytes.TrimSpace(der), []byte("-----BEGIN")) {
		return nil, fmt.Errorf("crl %s: PEM given, DER expected", u)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", u, err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("crl %s: not signed by the issuer: %w", u, err)
	}
	if !crl.NextUpdate.IsZero() && o.now().After(crl.NextUpdate) {
		return nil, fmt.Errorf("crl %s: expired at %s", u, crl.NextUpdate.Format(time.RFC3339))
	}
	r := &Revocation{Status: Good, Source: "crl " + u, ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			r.Status, r.RevokedAt, r.Reason = Revoked, e.RevocationTime, e.ReasonCode
			break
		}
	}
	return r, nil
}

// reasonText names an RFC 5280 CRLReason.
func reasonText(r int) string {
	names := []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
		"cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}
	if r >= 0 && r < len(names) && names[r] != "" {
		return names[r]
	}
	return strings.TrimSpace(fmt.Sprintf("reason %d", r))
}
