package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

var testPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}

// env is one test's HSM token, keystore and database, and the audit log
// and signing service on them, made on first use.
type env struct {
	t   testing.TB
	ks  *keystore.HSM
	db  *sqlite.DB
	dir string

	log *audit.Log
	sg  *signing.Service
}

// signing is the signing service every HSM key of the TSA signs through,
// recording in e.auditLog().
func (e *env) signing() *signing.Service {
	e.t.Helper()
	if e.sg == nil {
		sg, err := signing.New(signing.Options{Keys: e.ks, Core: signer.New(e.ks, signer.Config{}), Auditor: e.auditLog()})
		if err != nil {
			e.t.Fatal(err)
		}
		e.sg = sg
	}
	return e.sg
}

func (e *env) auditLog() *audit.Log {
	e.t.Helper()
	if e.log == nil {
		l, err := audit.Open(context.Background(), e.db, audit.Options{Node: "test"})
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { l.Close() })
		e.log = l
	}
	return e.log
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(t)
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Mode: keystore.ModeToken}, db, nil)
	if err != nil {
		t.Fatalf("open keystore: %v", err)
	}
	t.Cleanup(func() { ks.Close() })
	return &env{t: t, ks: ks, db: db, dir: dir}
}

// hsmKey makes a token-mode key in the HSM and returns its signer.
func (e *env) hsmKey(owner string, typ keystore.Type) *keystore.Signer {
	e.t.Helper()
	ctx := context.Background()
	k, err := e.ks.GenerateMode(ctx, owner, typ, keystore.ModeToken)
	if err != nil {
		e.t.Fatalf("generate %s key: %v", typ, err)
	}
	s, err := e.ks.Signer(ctx, k.ID)
	if err != nil {
		e.t.Fatalf("signer: %v", err)
	}
	return s
}

// pki is a root and an issuing CA, keys in the HSM.
type pki struct {
	root, issuing       *x509.Certificate
	rootKey, issuingKey crypto.Signer
}

func (e *env) newPKI(name string) *pki {
	e.t.Helper()
	p := &pki{rootKey: e.hsmKey("system:ca-root", keystore.ECP256), issuingKey: e.hsmKey("system:ca-issuing", keystore.ECP256)}
	now := time.Now()
	p.root = e.caCert(&x509.Certificate{
		Subject:   pkix.Name{CommonName: name + " Root CA", Organization: []string{"Firma Test"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
	}, nil, p.rootKey, p.rootKey)
	p.issuing = e.caCert(&x509.Certificate{
		Subject:   pkix.Name{CommonName: name + " Issuing CA", Organization: []string{"Firma Test"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
	}, p.root, p.issuingKey, p.rootKey)
	return p
}

func (e *env) caCert(tmpl, parent *x509.Certificate, key, parentKey crypto.Signer) *x509.Certificate {
	e.t.Helper()
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		e.t.Fatalf("ca certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (p *pki) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

// tsa is a built-in TSA under p with an HSM key of type typ; with a nil
// p, tweak must supply the signer and certificates.
func (e *env) tsa(p *pki, typ keystore.Type, tweak func(*ServerConfig)) *Server {
	e.t.Helper()
	cfg := ServerConfig{
		Policy:     testPolicy,
		Serials:    NewSequence(e.db, "default", 1),
		Registerer: prometheus.NewRegistry(),
		Signing:    e.signing(),
		Issuance:   e.db,
		// Long enough that no test sees an interval close on its own
		// unless it asks for a shorter one; Close records the summary.
		AuditInterval: time.Hour,
	}
	if p != nil {
		key := e.hsmKey(Owner, typ)
		cert, err := IssueCertificate(p.issuing, p.issuingKey, key.Public(), CertOptions{})
		if err != nil {
			e.t.Fatalf("issue tsa certificate: %v", err)
		}
		cfg.Signer, cfg.Cert, cfg.Chain = key, cert, []*x509.Certificate{p.issuing}
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		e.t.Fatalf("new tsa server: %v", err)
	}
	// Before the audit log closes (cleanups run last first).
	e.t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// serve serves h, a handler or a *Server. A *Server is reached through a
// bare RFC 3161 binding: the real one, with its HTTP refusals, is
// api/rest/tsahttp, which imports this package and so cannot be imported
// by its internal tests; api/rest/tsahttp's tests cover it.
func serve(t testing.TB, h any) string {
	t.Helper()
	var hh http.Handler
	switch h := h.(type) {
	case *Server:
		hh = bareHTTP(h)
	case http.Handler:
		hh = h
	default:
		t.Fatalf("serve %T", h)
	}
	srv := httptest.NewServer(hh)
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedURL is a loopback URL where nothing listens.
func closedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/tsa"
}

func writePEM(t testing.TB, path string, certs ...*x509.Certificate) string {
	t.Helper()
	var b strings.Builder
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a command and returns its combined output and error.
func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// post sends a body to a TSA and returns the HTTP response and body.
func post(t testing.TB, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

const tokenHash = crypto.SHA256

func sha256Of(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// bareHTTP answers a POSTed query with s's reply, with the statuses of
// api/rest/tsahttp: 503 while the time source is untrusted, 500 on our
// failure, else 200.
func bareHTTP(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply, _, err := s.Respond(r.Context(), body)
		status := http.StatusOK
		switch {
		case errors.Is(err, ErrTimeNotAvailable):
			status = http.StatusServiceUnavailable
		case err != nil:
			status = http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", ReplyContentType)
		w.WriteHeader(status)
		w.Write(reply)
	})
}
