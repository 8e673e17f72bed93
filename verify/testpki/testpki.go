package testpki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/api/rest/tsahttp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/tsa"
)

// CA is one certificate authority of the test PKI.
type CA struct {
	Name string
	Cert *x509.Certificate
	Key  crypto.Signer

	mu      sync.Mutex
	revoked map[string]time.Time // serial -> revocation time
	// ocspDown and crlDown make the OCSP responder or CRL server answer 503.
	ocspDown, crlDown bool
}

// PKI is the whole test PKI.
type PKI struct {
	KS       *keystore.HSM
	Root     *CA // signer root
	Issuing  *CA // issues signer certificates
	TSARoot  *CA // root of the TSA
	TSACert  *x509.Certificate
	TSAKey   crypto.Signer
	TSAURL   string
	BaseURL  string // OCSP and CRL server
	serial   int64
	serialMu sync.Mutex
	cas      map[string]*CA
	tsa      *tsa.Server
}

// New builds the PKI on a fresh token and starts its HTTP servers, all
// torn down when the test ends.
func New(tb testing.TB) *PKI {
	tb.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(tb)
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "pki.db"))
	if err != nil {
		tb.Fatalf("testpki: open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Mode: keystore.ModeToken}, st, nil)
	if err != nil {
		tb.Fatalf("testpki: open keystore: %v", err)
	}
	tb.Cleanup(func() { ks.Close() })
	p := &PKI{KS: ks, cas: map[string]*CA{}}

	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(srv.Close)
	p.BaseURL = srv.URL
	p.TSAURL = srv.URL + "/tsa"

	now := time.Now()
	p.Root = p.newCA(tb, "Firma Test Root", nil, now.Add(-48*time.Hour), now.Add(10*365*24*time.Hour))
	p.Issuing = p.newCA(tb, "Firma Test Issuing CA", p.Root, now.Add(-47*time.Hour), now.Add(5*365*24*time.Hour))
	p.TSARoot = p.newCA(tb, "Firma Test TSA Root", nil, now.Add(-48*time.Hour), now.Add(10*365*24*time.Hour))
	tsaKey := p.Key(tb, keystore.ECP256)
	p.TSAKey = tsaKey
	p.TSACert = p.issue(tb, p.TSARoot, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "Firma Test TSA", Organization: []string{"Firma Test"}},
		NotBefore:   now.Add(-46 * time.Hour),
		NotAfter:    now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}, tsaKey.Public())
	// RFC 3161 wants the timeStamping EKU critical; crypto/x509 writes it
	// non-critical, so it is re-issued with the extension spelt out.
	p.TSACert = p.reissueCriticalEKU(tb, p.TSARoot, p.TSACert, tsaKey.Public())
	// The TSA's HSM key signs through the signing service, as firmad's
	// does, recording in an audit log of the PKI's own.
	al, err := audit.Open(ctx, st, audit.Options{Node: "testpki"})
	if err != nil {
		tb.Fatalf("testpki: audit log: %v", err)
	}
	tb.Cleanup(func() { al.Close() })
	sg, err := signing.New(signing.Options{Keys: ks, Core: signer.New(ks, signer.Config{}), Auditor: al})
	if err != nil {
		tb.Fatalf("testpki: signing: %v", err)
	}
	p.tsa, err = tsa.NewServer(tsa.ServerConfig{
		Signer:     tsaKey,
		Signing:    sg,
		Cert:       p.TSACert,
		Chain:      []*x509.Certificate{p.TSARoot.Cert},
		Policy:     asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1},
		Serials:    tsa.NewSequence(st, "testpki", 1),
		Issuance:   st,
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		tb.Fatalf("testpki: tsa server: %v", err)
	}
	// Its last audit interval's summary, before the audit log closes.
	tb.Cleanup(func() { p.tsa.Close(context.Background()) })
	return p
}

// Key generates a token key of type t.
func (p *PKI) Key(tb testing.TB, t keystore.Type) *keystore.Signer {
	tb.Helper()
	ctx := context.Background()
	k, err := p.KS.GenerateMode(ctx, "testpki", t, keystore.ModeToken)
	if err != nil {
		tb.Fatalf("testpki: generate %s key: %v", t, err)
	}
	s, err := p.KS.Signer(ctx, k.ID)
	if err != nil {
		tb.Fatalf("testpki: signer: %v", err)
	}
	return s
}

func (p *PKI) nextSerial() *big.Int {
	p.serialMu.Lock()
	defer p.serialMu.Unlock()
	p.serial++
	return big.NewInt(1000 + p.serial)
}

func (p *PKI) newCA(tb testing.TB, name string, parent *CA, from, to time.Time) *CA {
	tb.Helper()
	key := p.Key(tb, keystore.ECP256)
	ca := &CA{Name: strings.ReplaceAll(strings.ToLower(name), " ", "-"), Key: key, revoked: map[string]time.Time{}}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Firma Test"}, Country: []string{"ES"}},
		NotBefore:             from,
		NotAfter:              to,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	if parent == nil {
		ca.Cert = p.issue(tb, &CA{Key: key}, tmpl, key.Public())
	} else {
		ca.Cert = p.issue(tb, parent, tmpl, key.Public())
	}
	p.cas[ca.Name] = ca
	return ca
}

// issue signs tmpl with ca (ca.Cert nil means self-signed), adding the
// issuer's OCSP and CRL addresses.
func (p *PKI) issue(tb testing.TB, ca *CA, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	tb.Helper()
	tmpl.SerialNumber = p.nextSerial()
	parent := tmpl
	if ca.Cert != nil {
		parent = ca.Cert
		tmpl.OCSPServer = []string{p.BaseURL + "/ocsp/" + ca.Name}
		tmpl.CRLDistributionPoints = []string{p.BaseURL + "/crl/" + ca.Name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, ca.Key)
	if err != nil {
		tb.Fatalf("testpki: issue %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse %q: %v", tmpl.Subject.CommonName, err)
	}
	return c
}

func (p *PKI) reissueCriticalEKU(tb testing.TB, ca *CA, c *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	tb.Helper()
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject:         c.Subject,
		NotBefore:       c.NotBefore,
		NotAfter:        c.NotAfter,
		KeyUsage:        c.KeyUsage,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	return p.issue(tb, ca, tmpl, pub)
}

// User issues a signing certificate for a new token key of type t and
// returns the key and its chain (leaf, issuing CA, root).
func (p *PKI) User(tb testing.TB, t keystore.Type, name string) (*keystore.Signer, []*x509.Certificate) {
	tb.Helper()
	key := p.Key(tb, t)
	now := time.Now()
	cert := p.issue(tb, p.Issuing, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, SerialNumber: "IDCES-12345678Z", Country: []string{"ES"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}, key.Public())
	return key, []*x509.Certificate{cert, p.Issuing.Cert, p.Root.Cert}
}

// IssueFor issues a signing certificate for pub, e.g. a software key that
// a tool nobody here wrote signs with, and returns the chain.
func (p *PKI) IssueFor(tb testing.TB, pub crypto.PublicKey, name string) []*x509.Certificate {
	tb.Helper()
	now := time.Now()
	cert := p.issue(tb, p.Issuing, &x509.Certificate{
		Subject:        pkix.Name{CommonName: name, Country: []string{"ES"}},
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		EmailAddresses: []string{"citizen@example.es"},
	}, pub)
	return []*x509.Certificate{cert, p.Issuing.Cert, p.Root.Cert}
}

// Revoke marks cert revoked by its issuer at time at.
func (p *PKI) Revoke(cert *x509.Certificate, at time.Time) {
	for _, ca := range p.cas {
		if bytes.Equal(ca.Cert.RawSubject, cert.RawIssuer) {
			ca.mu.Lock()
			ca.revoked[cert.SerialNumber.String()] = at
			ca.mu.Unlock()
		}
	}
}

// SetDown makes every OCSP responder, CRL server or both answer 503, or
// brings them back.
func (p *PKI) SetDown(ocsp, crl bool) {
	for _, ca := range p.cas {
		ca.mu.Lock()
		ca.ocspDown, ca.crlDown = ocsp, crl
		ca.mu.Unlock()
	}
}

func (p *PKI) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	switch {
	case parts[0] == "tsa":
		tsahttp.Handler(p.tsa, nil).ServeHTTP(w, r)
		return
	case len(parts) >= 2 && (parts[0] == "ocsp" || parts[0] == "crl"):
		ca := p.cas[parts[1]]
		if ca == nil {
			http.NotFound(w, r)
			return
		}
		ca.mu.Lock()
		down := parts[0] == "ocsp" && ca.ocspDown || parts[0] == "crl" && ca.crlDown
		ca.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if parts[0] == "crl" {
			p.serveCRL(w, ca)
			return
		}
		var body []byte
		if r.Method == http.MethodPost {
			body, _ = io.ReadAll(r.Body)
		} else if len(parts) == 3 {
			s, _ := url.PathUnescape(parts[2])
			body, _ = base64.StdEncoding.DecodeString(s)
		}
		p.serveOCSP(w, ca, body)
		return
	}
	http.NotFound(w, r)
}

func (p *PKI) serveOCSP(w http.ResponseWriter, ca *CA, body []byte) {
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	ca.mu.Lock()
	at, revoked := ca.revoked[req.SerialNumber.String()]
	ca.mu.Unlock()
	now := time.Now().Truncate(time.Minute)
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	if revoked {
		tmpl.Status = ocsp.Revoked
		tmpl.RevokedAt = at
		tmpl.RevocationReason = ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

func (p *PKI) serveCRL(w http.ResponseWriter, ca *CA) {
	ca.mu.Lock()
	var entries []x509.RevocationListEntry
	for s, at := range ca.revoked {
		n, _ := new(big.Int).SetString(s, 10)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: at, ReasonCode: ocsp.KeyCompromise})
	}
	ca.mu.Unlock()
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(der)
}

// Timestamper is the tsa package's client on the PKI's TSA, returning
// bare tokens as signer.Timestamper wants.
type Timestamper struct{ c *tsa.Client }

// Timestamper returns a client of the PKI's TSA.
func (p *PKI) Timestamper(tb testing.TB) *Timestamper {
	tb.Helper()
	c, err := tsa.NewClient(tsa.ClientConfig{URLs: []string{p.TSAURL}, Roots: Pool(p.TSARoot.Cert), Retries: -1})
	if err != nil {
		tb.Fatalf("testpki: tsa client: %v", err)
	}
	return &Timestamper{c: c}
}

// Timestamp returns a checked token over digest.
func (t *Timestamper) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
	tok, err := t.c.Timestamp(ctx, h, digest)
	if err != nil {
		return nil, err
	}
	return tok.DER, nil
}

// WritePEM writes certs to dir/name as PEM and returns the path.
func WritePEM(tb testing.TB, dir, name string, certs ...*x509.Certificate) string {
	tb.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Pool returns a pool of the given certificates.
func Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
