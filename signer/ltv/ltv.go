package ltv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/errs"
)

// Errors of gathering, told apart with errors.Is.
var (
	// ErrRevoked is a certificate of the chain that is revoked: the
	// signature must not be made long-term, it is not valid.
	ErrRevoked = errs.Sentinel(errs.Invalid, "certificate_revoked", "certificate revoked")
	// ErrUnavailable is a certificate whose status no source gave.
	ErrUnavailable = errs.Sentinel(errs.Unavailable, "revocation_unavailable", "revocation status unavailable")
	// ErrChain is a certificate whose issuer is not among those given.
	ErrChain = errs.Sentinel(errs.Invalid, "incomplete_chain", "certificate chain incomplete")
)

// Defaults of Gatherer.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxCRLBytes = 20 << 20
	maxOCSPBytes       = 64 << 10
)

// oidOCSPNoCheck marks a delegated OCSP responder certificate whose
// status is not to be asked (RFC 6960 4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// Material is validation material: certificates, DER OCSP responses
// (whole OCSPResponse, as RFC 5940 id-ri-ocsp-response and the PDF DSS
// hold them) and DER CRLs. Nothing is there twice.
type Material struct {
	Certs []*x509.Certificate
	OCSP  [][]byte
	CRLs  [][]byte
}

// Gatherer fetches validation material. The zero value asks over HTTP
// only, with DefaultTimeout.
type Gatherer struct {
	// Local, when set, answers DER OCSP requests in process (the ca
	// package's RespondOCSP); it is asked first, and a response that is
	// not a good or revoked answer (unauthorized, unknown) sends the
	// gatherer on to the certificate's own URLs.
	Local func(ctx context.Context, req []byte) ([]byte, error)
	// LocalCRL, when set, returns the latest CRL of issuer held in
	// process (nil, nil when it holds none); it is asked when OCSP gave no
	// answer, before the certificate's CRL URLs.
	LocalCRL func(ctx context.Context, issuer *x509.Certificate) ([]byte, error)
	// HTTP is the client for outside responders and CRLs; nil means one
	// with DefaultTimeout.
	// Issuers, when set, returns CA certificates known beforehand (the
	// built-in CA's), used to complete chains given without their top;
	// other missing issuers are fetched from the certificate's caIssuers
	// URLs.
	Issuers     func() []*x509.Certificate
	HTTP        *http.Client
	Timeout     time.Duration // per exchange; 0 means DefaultTimeout
	MaxCRLBytes int64         // 0 means DefaultMaxCRLBytes
	Now         func() time.Time
}

var defaultHTTP = &http.Client{Timeout: DefaultTimeout}

// Gather returns the material for the chains, each leaf first. It asks
// about every certificate afresh; use a Batch to share answers.
func (g *Gatherer) Gather(ctx context.Context, chains ...[]*x509.Certificate) (*Material, error) {
	return g.Batch().Gather(ctx, chains...)
}

// Batch returns a gatherer whose answers are kept until it is dropped:
// one per batch of signatures.
func (g *Gatherer) Batch() *Batch {
	return &Batch{g: g, status: map[string]*entry{}, crls: map[string]*entry{}, material: map[string]*materialEntry{}}
}

// Batch is a Gatherer with a cache, safe for concurrent use: concurrent
// asks about one certificate share one exchange.
type Batch struct {
	g      *Gatherer
	mu     sync.Mutex
	status map[string]*entry // issuer+serial -> OCSP response or CRL URL
	crls   map[string]*entry // URL -> CRL
	// material keeps whole answers by the chains asked about: the
	// documents of a batch share their chains, and checking them again
	// would cost a signature verification per certificate per document.
	material map[string]*materialEntry
}

type materialEntry struct {
	once sync.Once
	m    *Material
	err  error
}

type entry struct {
	once sync.Once
	ocsp []byte // the response, when OCSP answered
	crl  []byte // the CRL, when the answer came from one
	err  error
}

// Gather returns the material for the chains (each leaf first; order
// otherwise free): all their certificates, the delegated OCSP responders'
// certificates, and one OCSP response or CRL for every certificate that
// is not self-signed and not an OCSP responder with ocsp-nocheck.
func (b *Batch) Gather(ctx context.Context, chains ...[]*x509.Certificate) (*Material, error) {
	var key []byte
	for _, ch := range chains {
		for _, c := range ch {
			sum := sha256.Sum256(c.Raw)
			key = append(key, sum[:]...)
		}
		key = append(key, 0)
	}
	b.mu.Lock()
	e := b.material[string(key)]
	if e == nil {
		e = &materialEntry{}
		b.material[string(key)] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.m, e.err = b.gather(ctx, chains) })
	return e.m, e.err
}

func (b *Batch) gather(ctx context.Context, chains [][]*x509.Certificate) (*Material, error) {
	m := &Material{}
	var all []*x509.Certificate
	for _, ch := range chains {
		for _, c := range ch {
			all = addCert(all, c)
		}
	}
	// Complete the chains up to self-signed certificates.
	for i := 0; i < len(all); i++ {
		c := all[i]
		if isSelfSigned(c) || issuerOf(c, all) != nil {
			continue
		}
		issuer, err := b.findIssuer(ctx, c)
		if err != nil {
			return nil, err
		}
		all = addCert(all, issuer)
	}
	m.Certs = append(m.Certs, all...)
	for _, c := range all {
		if isSelfSigned(c) || hasNoCheck(c) {
			continue
		}
		issuer := issuerOf(c, all)
		e := b.ask(ctx, c, issuer)
		if e.err != nil {
			return nil, e.err
		}
		if e.ocsp != nil {
			m.OCSP = addDER(m.OCSP, e.ocsp)
			if r, err := ocsp.ParseResponse(e.ocsp, issuer); err == nil && r.Certificate != nil {
				m.Certs = addCert(m.Certs, r.Certificate)
			}
		}
		if e.crl != nil {
			m.CRLs = addDER(m.CRLs, e.crl)
		}
	}
	return m, nil
}

// findIssuer finds c's issuer among the known issuers or at its
// caIssuers URLs (fetched once per batch).
func (b *Batch) findIssuer(ctx context.Context, c *x509.Certificate) (*x509.Certificate, error) {
	if b.g.Issuers != nil {
		if i := issuerOf(c, b.g.Issuers()); i != nil {
			return i, nil
		}
	}
	var errList []error
	for _, u := range c.IssuingCertificateURL {
		b.mu.Lock()
		e := b.crls["aia\x00"+u]
		if e == nil {
			e = &entry{}
			b.crls["aia\x00"+u] = e
		}
		b.mu.Unlock()
		e.once.Do(func() { e.crl, e.err = b.get(ctx, u, maxOCSPBytes) })
		if e.err != nil {
			errList = append(errList, e.err)
			continue
		}
		certs, err := parseCerts(e.crl)
		if err != nil {
			errList = append(errList, fmt.Errorf("%s: %w", u, err))
			continue
		}
		if i := issuerOf(c, certs); i != nil {
			return i, nil
		}
	}
	return nil, fmt.Errorf("%q: %w: its issuer %q is neither given nor found (%v)", c.Subject.CommonName, ErrChain, c.Issuer.CommonName, errors.Join(errList...))
}

// parseCerts reads DER certificates (RFC 5280 4.2.2.1 allows one or a
// certs-only CMS; a bare DER or PEM certificate is what most serve).
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	return x509.ParseCertificates(b)
}

func (b *Batch) ask(ctx context.Context, c, issuer *x509.Certificate) *entry {
	key := string(issuer.RawSubject) + "\x00" + string(issuer.RawSubjectPublicKeyInfo) + "\x00" + c.SerialNumber.String()
	b.mu.Lock()
	e := b.status[key]
	if e == nil {
		e = &entry{}
		b.status[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.ocsp, e.crl, e.err = b.fetch(ctx, c, issuer) })
	return e
}

func (b *Batch) now() time.Time {
	if b.g.Now != nil {
		return b.g.Now()
	}
	return time.Now()
}

// fetch asks OCSP (in process, then each URL), then each CRL.
func (b *Batch) fetch(ctx context.Context, c, issuer *x509.Certificate) (ocspDER, crlDER []byte, err error) {
	var errList []error
	req, err := ocsp.CreateRequest(c, issuer, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%q: ocsp request: %w", c.Subject.CommonName, err)
	}
	var sources []func() ([]byte, error)
	if b.g.Local != nil {
		sources = append(sources, func() ([]byte, error) { return b.g.Local(ctx, req) })
	}
	for _, u := range c.OCSPServer {
		sources = append(sources, func() ([]byte, error) { return b.post(ctx, u, req) })
	}
	for _, src := range sources {
		der, err := src()
		if err == nil {
			err = b.checkOCSP(der, c, issuer)
		}
		if err == nil {
			return der, nil, nil
		}
		if errors.Is(err, ErrRevoked) {
			return nil, nil, err
		}
		errList = append(errList, err)
	}
	if b.g.LocalCRL != nil {
		der, err := b.localCRL(ctx, issuer)
		if err == nil && der != nil {
			err = b.checkCRL(der, c)
			if err == nil {
				return nil, der, nil
			}
		}
		if errors.Is(err, ErrRevoked) {
			return nil, nil, err
		}
		if err != nil {
			errList = append(errList, err)
		}
	}
	for _, u := range c.CRLDistributionPoints {
		der, err := b.crl(ctx, u, issuer)
		if err == nil {
			err = b.checkCRL(der, c)
		}
		if err == nil {
			return nil, der, nil
		}
		if errors.Is(err, ErrRevoked) {
			return nil, nil, err
		}
		errList = append(errList, err)
	}
	if len(errList) == 0 {
		errList = append(errList, errors.New("no OCSP responder or CRL named"))
	}
	return nil, nil, fmt.Errorf("%q: %w: %w", c.Subject.CommonName, ErrUnavailable, errors.Join(errList...))
}

// checkOCSP accepts a response signed for issuer about c, current, and
// good; revoked is ErrRevoked.
func (b *Batch) checkOCSP(der []byte, c, issuer *x509.Certificate) error {
	r, err := ocsp.ParseResponseForCert(der, c, issuer)
	if err != nil {
		return fmt.Errorf("ocsp: %w", err)
	}
	now := b.now()
	if !r.NextUpdate.IsZero() && now.After(r.NextUpdate) {
		return fmt.Errorf("ocsp: stale response (nextUpdate %s)", r.NextUpdate.Format(time.RFC3339))
	}
	switch r.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return fmt.Errorf("%q revoked at %s: %w", c.Subject.CommonName, r.RevokedAt.Format(time.RFC3339), ErrRevoked)
	}
	return errors.New("ocsp: status unknown")
}

// checkCRL accepts a CRL (already checked against the issuer) that does
// not list c.
func (b *Batch) checkCRL(der []byte, c *x509.Certificate) error {
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	if !l.NextUpdate.IsZero() && b.now().After(l.NextUpdate) {
		return fmt.Errorf("crl: stale (nextUpdate %s)", l.NextUpdate.Format(time.RFC3339))
	}
	for _, e := range l.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
			return fmt.Errorf("%q revoked at %s: %w", c.Subject.CommonName, e.RevocationTime.Format(time.RFC3339), ErrRevoked)
		}
	}
	return nil
}

// localCRL asks LocalCRL once per batch and issuer, and checks the CRL's
// signature.
func (b *Batch) localCRL(ctx context.Context, issuer *x509.Certificate) ([]byte, error) {
	key := "local\x00" + string(issuer.Raw)
	b.mu.Lock()
	e := b.crls[key]
	if e == nil {
		e = &entry{}
		b.crls[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() {
		der, err := b.g.LocalCRL(ctx, issuer)
		if err != nil || der == nil {
			e.err = err
			return
		}
		l, err := x509.ParseRevocationList(der)
		if err == nil {
			err = l.CheckSignatureFrom(issuer)
		}
		if err != nil {
			e.err = fmt.Errorf("local crl of %q: %w", issuer.Subject.CommonName, err)
			return
		}
		e.crl = der
	})
	return e.crl, e.err
}

// crl fetches the CRL at u once per batch and checks its signature.
func (b *Batch) crl(ctx context.Context, u string, issuer *x509.Certificate) ([]byte, error) {
	b.mu.Lock()
	e := b.crls[u]
	if e == nil {
		e = &entry{}
		b.crls[u] = e
	}
	b.mu.Unlock()
	e.once.Do(func() {
		max := b.g.MaxCRLBytes
		if max <= 0 {
			max = DefaultMaxCRLBytes
		}
		der, err := b.get(ctx, u, max)
		if err != nil {
			e.err = err
			return
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			e.err = fmt.Errorf("crl %s: %w", u, err)
			return
		}
		if err := l.CheckSignatureFrom(issuer); err != nil {
			e.err = fmt.Errorf("crl %s: %w", u, err)
			return
		}
		e.crl = der
	})
	return e.crl, e.err
}

func (b *Batch) client() *http.Client {
	if b.g.HTTP != nil {
		return b.g.HTTP
	}
	return defaultHTTP
}

func (b *Batch) timeout() time.Duration {
	if b.g.Timeout > 0 {
		return b.g.Timeout
	}
	return DefaultTimeout
}

func (b *Batch) post(ctx context.Context, u string, req []byte) ([]byte, error) {
	if !isHTTP(u) {
		return nil, fmt.Errorf("ocsp %s: not an http URL", u)
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("ocsp %s: %w", u, err)
	}
	r.Header.Set("Content-Type", "application/ocsp-request")
	return b.do(r, maxOCSPBytes)
}

func (b *Batch) get(ctx context.Context, u string, max int64) ([]byte, error) {
	if !isHTTP(u) {
		return nil, fmt.Errorf("%s: not an http URL", u)
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return b.do(r, max)
}

func (b *Batch) do(r *http.Request, max int64) ([]byte, error) {
	resp, err := b.client().Do(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", r.URL.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.URL.Redacted(), err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%s: answer over %d bytes", r.URL.Redacted(), max)
	}
	return body, nil
}

func isHTTP(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func hasNoCheck(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidOCSPNoCheck) {
			return true
		}
	}
	return false
}

// issuerOf finds c's issuer among certs by name and signature.
func issuerOf(c *x509.Certificate, certs []*x509.Certificate) *x509.Certificate {
	for _, i := range certs {
		if i != c && bytes.Equal(i.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(i) == nil {
			return i
		}
	}
	return nil
}

func addCert(list []*x509.Certificate, c *x509.Certificate) []*x509.Certificate {
	for _, have := range list {
		if have.Equal(c) {
			return list
		}
	}
	return append(list, c)
}

func addDER(list [][]byte, der []byte) [][]byte {
	for _, have := range list {
		if bytes.Equal(have, der) {
			return list
		}
	}
	return append(list, der)
}
