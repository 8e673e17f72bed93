package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/pkihttp"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// env is one service's worth of real parts: a fresh SoftHSM2 token, a
// SQLite file, the citizen registry and the CA, published on a loopback
// HTTP server.
type env struct {
	t   testing.TB
	ctx context.Context
	dir string
	db  *sqlite.DB
	ks  *keystore.HSM
	reg *registry.Service
	ca  *ca.Authority
	cfg ca.Config
	srv *httptest.Server
	h   *atomic.Pointer[http.Handler]
}

// use makes a the CA the test server publishes.
func (e *env) use(a *ca.Authority) {
	e.ca = a
	h := pkihttp.Handler(a, nil)
	e.h.Store(&h)
}

var registrar = registry.Staff{Name: "registrar-test", Role: policy.Registrar}

func newEnv(t testing.TB, mut func(*ca.Config)) *env {
	t.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(t)
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, dir: dir, db: db, ks: ks, h: &atomic.Pointer[http.Handler]{}}
	h := e.h
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)

	e.cfg = ca.Config{BaseURL: e.srv.URL, Organization: "Firma Test", Policies: []string{"1.3.6.1.4.1.99999.1.1", "0.4.0.2042.1.1"}}
	if mut != nil {
		mut(&e.cfg)
	}
	e.ca, err = ca.New(e.cfg, ks, db, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.reg, err = registry.New(db, registry.Options{SMS: outbox, Revoker: ca.CitizenRevoker{CA: e.ca},
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	e.ca.SetCitizens(e.reg)
	e.use(e.ca)
	return e
}

// advanced registers a citizen in person, which gives the advanced level.
func (e *env) advanced(id, given, surnames string) {
	e.t.Helper()
	if _, err := e.reg.RegisterInPerson(e.ctx, registrar, registry.Person{ID: id, GivenName: given, Surnames: surnames,
		Mobile: "+34600" + id[2:8], Email: strings.ToLower(given) + "@example.es"}); err != nil {
		e.t.Fatalf("register %s: %v", id, err)
	}
}

func (e *env) init() *ca.InitResult {
	e.t.Helper()
	res, err := e.ca.Init(e.ctx)
	if err != nil {
		e.t.Fatalf("init: %v", err)
	}
	return res
}

// file writes a certificate or CSR as PEM in the test directory.
func (e *env) file(name, typ string, der []byte) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) chain() (root, issuing string) {
	return e.file("root.pem", "CERTIFICATE", e.ca.Root().Raw), e.file("issuing.pem", "CERTIFICATE", e.ca.Issuing().Raw)
}

// openssl runs openssl and returns its combined output; it fails the test
// when openssl exits non-zero.
func openssl(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustContain(t testing.TB, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: %q missing in:\n%s", what, w, out)
		}
	}
}

// ocspStatus asks the responder with openssl ocsp, as a relying party
// would, and returns openssl's output after checking the response verified.
func (e *env) ocspStatus(root, issuing, cert string) string {
	e.t.Helper()
	out := openssl(e.t, e.dir, "ocsp", "-issuer", issuing, "-cert", cert, "-url", e.srv.URL+"/ocsp", "-CAfile", root)
	mustContain(e.t, "openssl ocsp", out, "Response verify OK")
	return out
}

func (e *env) crl(name string) string {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + "/crl/" + name + ".crl")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		e.t.Fatalf("GET crl: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := filepath.Join(e.dir, name+".crl")
	f, err := os.Create(p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(resp.Body); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func sign(t *testing.T, ks *keystore.HSM, keyID string) ([]byte, []byte, error) {
	t.Helper()
	digest := sha256.Sum256([]byte("documento a firmar"))
	s, err := ks.Signer(context.Background(), keyID)
	if err != nil {
		return nil, nil, err
	}
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	return digest[:], sig, err
}

func TestInitIsIdempotentAndChains(t *testing.T) {
	e := newEnv(t, nil)
	first := e.init()
	if got := strings.Join(first.Created, ","); got != "root,issuing,ocsp" {
		t.Fatalf("first init created %q, want root,issuing,ocsp", got)
	}
	second := e.init()
	if len(second.Created) != 0 {
		t.Errorf("second init created %v, want nothing", second.Created)
	}
	if second.Root.SerialNumber.Cmp(first.Root.SerialNumber) != 0 || second.Issuing.SerialNumber.Cmp(first.Issuing.SerialNumber) != 0 {
		t.Errorf("second init replaced the CAs")
	}
	keys, err := e.ks.Keys(e.ctx, ca.OwnerRoot, "", 10)
	if err != nil || len(keys) != 1 || keys[0].Mode != keystore.ModeToken {
		t.Fatalf("root keys in HSM = %v, %v; want one token key", keys, err)
	}

	root, issuing := e.chain()
	ocspPEM := e.file("ocsp.pem", "CERTIFICATE", e.ca.OCSPResponder().Raw)
	for _, c := range []struct{ name, cert string }{{"issuing", issuing}, {"ocsp", ocspPEM}} {
		out := openssl(t, e.dir, "verify", "-CAfile", root, "-untrusted", issuing, c.cert)
		mustContain(t, "verify "+c.name, out, ": OK")
	}
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"root", root, []string{"CA:TRUE", "Certificate Sign, CRL Sign", "Subject Key Identifier", "CN = Firma Test Root CA", "ecdsa-with-SHA384"}},
		{"issuing", issuing, []string{"CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign", "Authority Key Identifier",
			"CN = Firma Test Issuing CA 1", "URI:" + e.srv.URL + "/crl/root.crl", "CA Issuers - URI:" + e.srv.URL + "/ca/root.crt"}},
		{"ocsp", ocspPEM, []string{"OCSP Signing", "OCSP No Check", "Digital Signature", "CA:FALSE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustContain(t, tc.name, openssl(t, e.dir, "x509", "-in", tc.file, "-noout", "-text"), tc.want...)
		})
	}
	if !strings.EqualFold(string(e.ca.Issuing().AuthorityKeyId), string(e.ca.Root().SubjectKeyId)) {
		t.Errorf("issuing AKI %x != root SKI %x", e.ca.Issuing().AuthorityKeyId, e.ca.Root().SubjectKeyId)
	}

	// A second process on the same store and token loads the same CAs.
	other, err := ca.New(e.cfg, e.ks, e.db, e.reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Load(e.ctx); err != nil {
		t.Fatal(err)
	}
	if other.Issuing().SerialNumber.Cmp(first.Issuing.SerialNumber) != 0 {
		t.Errorf("reloaded issuing CA differs")
	}
}

func TestLoadBeforeInit(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.ca.Load(e.ctx); !errors.Is(err, ca.ErrNotInitialised) {
		t.Fatalf("Load on a fresh store = %v, want ErrNotInitialised", err)
	}
	e.advanced("12345678Z", "Juan", "Español Martínez")
	if _, err := e.ca.EnsureCertificate(e.ctx, "12345678Z"); !errors.Is(err, ca.ErrNotInitialised) {
		t.Fatalf("EnsureCertificate before init = %v, want ErrNotInitialised", err)
	}
}

func TestCitizenCertificateProfile(t *testing.T) {
	tests := []struct {
		name    string
		keyType keystore.Type
		algo    string
	}{
		{"ec-p256", keystore.ECP256, "id-ecPublicKey"},
		{"rsa-2048", keystore.RSA2048, "rsaEncryption"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *ca.Config) { c.CitizenKeyType = tc.keyType; c.QCStatements = true })
			e.init()
			e.advanced("12345678Z", "Juan", "Español Martínez")
			c, err := e.ca.EnsureCertificate(e.ctx, "12.345.678-z")
			if err != nil {
				t.Fatal(err)
			}
			again, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
			if err != nil || again.ID != c.ID {
				t.Fatalf("second EnsureCertificate = %v, %v; want the same certificate %s", again, err, c.ID)
			}
			root, issuing := e.chain()
			leaf := e.file("citizen.pem", "CERTIFICATE", c.DER)
			mustContain(t, "openssl verify", openssl(t, e.dir, "verify", "-CAfile", root, "-untrusted", issuing, leaf), "citizen.pem: OK")

			text := openssl(t, e.dir, "x509", "-in", leaf, "-noout", "-text", "-nameopt", "RFC2253,-esc_msb")
			mustContain(t, "openssl x509 -text", text,
				"C=ES", "serialNumber=IDCES-12345678Z", "GN=Juan", "SN=Español Martínez", "CN=ESPAÑOL MARTÍNEZ\\, JUAN - 12345678Z",
				"X509v3 Key Usage: critical", "Digital Signature, Non Repudiation",
				"Policy: 1.3.6.1.4.1.99999.1.1", "Policy: 0.4.0.2042.1.1",
				"URI:"+e.srv.URL+"/crl/issuing.crl", "OCSP - URI:"+e.srv.URL+"/ocsp", "CA Issuers - URI:"+e.srv.URL+"/ca/issuing.crt",
				"email:juan@example.es", "qcStatements", tc.algo)

			cert := c.Cert
			if n := len(cert.SerialNumber.Bytes()); n != 16 {
				t.Errorf("serial is %d bytes, want 16", n)
			}
			if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment || cert.IsCA {
				t.Errorf("key usage %v, CA %v", cert.KeyUsage, cert.IsCA)
			}
			for _, ext := range cert.Extensions {
				if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 15}) && !ext.Critical {
					t.Errorf("keyUsage not critical")
				}
			}
			if cert.Subject.CommonName != "ESPAÑOL MARTÍNEZ, JUAN - 12345678Z" || cert.Subject.SerialNumber != "IDCES-12345678Z" {
				t.Errorf("subject %q", cert.Subject)
			}
			if want := cert.NotAfter.Sub(cert.NotBefore); want < 700*24*time.Hour {
				t.Errorf("validity %s, want about two years", want)
			}
			key, err := e.ks.Key(e.ctx, c.KeyID)
			if err != nil || key.Owner != "12345678Z" || key.Type != tc.keyType {
				t.Fatalf("key %s: %+v, %v", c.KeyID, key, err)
			}

			// The certificate's key signs in the HSM, and the signature
			// checks with the certificate's public key.
			digest, sig, err := sign(t, e.ks, c.KeyID)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkSig(cert, digest, sig); err != nil {
				t.Fatalf("signature does not verify with the certificate: %v", err)
			}
		})
	}
}

func checkSig(cert *x509.Certificate, digest, sig []byte) error {
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	default:
		return cert.CheckSignature(x509.SHA256WithRSA, []byte("documento a firmar"), sig)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	// A video call registration gives the basic level.
	basicReg, err := registry.New(e.db, registry.Options{SMS: mustOutbox(t, e.db), Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1},
		Clock: func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := basicReg.RegisterVideoCall(e.ctx, registry.Staff{Name: "agent", Role: policy.VideoAgent},
		registry.Person{ID: "23456789D", GivenName: "Lucía", Surnames: "Gómez", Mobile: "+34611111111", Email: "lucia@example.es"}); err != nil {
		t.Fatal(err)
	}
	e.advanced("34567890V", "Pedro", "Ruiz")
	if _, err := e.reg.Remove(e.ctx, registrar, "34567890V", "moved abroad"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		id      string
		want    error
		message []string
	}{
		{"basic citizen", "23456789D", ca.ErrNotAdvanced, []string{"advanced", "in person", "electronic certificate or DNIe"}},
		{"removed citizen", "34567890V", ca.ErrInactive, []string{"removed"}},
		{"unknown citizen", "45678901G", registry.ErrNotFound, []string{"45678901G"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []func(context.Context, string) (*ca.Certificate, error){e.ca.EnsureCertificate, e.ca.Issue, e.ca.Renew} {
				c, err := op(e.ctx, tc.id)
				if !errors.Is(err, tc.want) || c != nil {
					t.Fatalf("got %v, %v; want %v", c, err, tc.want)
				}
				mustContain(t, "refusal", err.Error(), tc.message...)
			}
			if keys, _ := e.ks.Keys(e.ctx, tc.id, "", 10); len(keys) != 0 {
				t.Errorf("refused citizen got %d keys in the HSM", len(keys))
			}
		})
	}
	var refusal *policy.Refusal
	if _, err := e.ca.EnsureCertificate(e.ctx, "23456789D"); !errors.As(err, &refusal) || refusal.Rule != policy.RuleAdvancedRequired {
		t.Errorf("basic refusal is not a policy.Refusal with rule %s: %v", policy.RuleAdvancedRequired, err)
	}
}

func mustOutbox(t *testing.T, db *sqlite.DB) *sms.Outbox {
	o, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestRevocationPublishedAndKeyDestroyed(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	root, issuing := e.chain()
	leaf := e.file("citizen.pem", "CERTIFICATE", c.DER)
	mustContain(t, "live certificate", e.ocspStatus(root, issuing, leaf), "citizen.pem: good")
	before, err := e.ca.CRL(e.ctx, "issuing")
	if err != nil {
		t.Fatal(err)
	}
	held, err := e.ks.Signer(e.ctx, c.KeyID) // a signer taken before revocation
	if err != nil {
		t.Fatal(err)
	}

	if _, err := e.ca.Revoke(e.ctx, c.Serial, ca.Reason(6)); !errors.Is(err, ca.ErrBadReason) {
		t.Errorf("revoke with certificateHold = %v, want ErrBadReason", err)
	}
	for _, ref := range []string{c.ID, c.Serial, strings.ToUpper(c.Serial), "0x" + c.Serial, colons(c.Serial)} {
		if got, err := e.ca.Certificate(e.ctx, ref); err != nil || got.ID != c.ID {
			t.Errorf("Certificate(%q) = %v, %v", ref, got, err)
		}
	}
	r, err := e.ca.Revoke(e.ctx, strings.ToUpper(c.Serial), ca.ReasonKeyCompromise)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "revoked" || r.Reason != ca.ReasonKeyCompromise {
		t.Fatalf("revoked certificate %+v", r)
	}
	if _, err := e.ca.Revoke(e.ctx, c.ID, ca.ReasonKeyCompromise); !errors.Is(err, ca.ErrAlreadyRevoked) {
		t.Errorf("second revoke = %v, want ErrAlreadyRevoked", err)
	}

	out := e.ocspStatus(root, issuing, leaf)
	mustContain(t, "revoked certificate", out, "citizen.pem: revoked", "Reason: keyCompromise")

	crlFile := e.crl("issuing")
	text := openssl(t, e.dir, "crl", "-inform", "DER", "-in", crlFile, "-noout", "-text")
	mustContain(t, "openssl crl", text, "Serial Number: "+strings.ToUpper(c.Serial), "Key Compromise", "X509v3 CRL Number")
	mustContain(t, "crl signature", openssl(t, e.dir, "crl", "-inform", "DER", "-in", crlFile, "-CAfile", issuing, "-noout"), "verify OK")
	after, err := e.ca.CRL(e.ctx, "issuing")
	if err != nil || after.Number <= before.Number {
		t.Errorf("CRL number %d after revocation, was %d (%v)", after.Number, before.Number, err)
	}
	// A relying party checking the CRL rejects the certificate.
	crlPEM := filepath.Join(e.dir, "issuing-crl.pem")
	openssl(t, e.dir, "crl", "-inform", "DER", "-in", crlFile, "-out", crlPEM)
	cmd := exec.Command("openssl", "verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", root, "-untrusted", issuing, leaf)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Errorf("openssl verify -crl_check accepted a revoked certificate: %v\n%s", err, out)
	}

	// The key is gone from the HSM: no new signer, and the one held
	// before cannot sign either.
	if _, _, err := sign(t, e.ks, c.KeyID); !errors.Is(err, keystore.ErrKeyDestroyed) {
		t.Errorf("signing with the revoked key = %v, want ErrKeyDestroyed", err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := held.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Errorf("a signer held across revocation still signs")
	}
	// The citizen gets a new certificate and key on next use.
	next, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil || next.ID == c.ID || next.KeyID == c.KeyID {
		t.Fatalf("after revocation EnsureCertificate = %+v, %v; want a new certificate and key", next, err)
	}
}

func TestOCSPUnknownAndMalformed(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	root, issuing := e.chain()
	out := openssl(t, e.dir, "ocsp", "-issuer", issuing, "-serial", "0x4bcdef0123456789abcdef0123456789", "-url", e.srv.URL+"/ocsp", "-CAfile", root)
	mustContain(t, "unknown serial", out, ": unknown", "Response verify OK")

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		want   string
	}{
		{"garbage POST", "POST", "/ocsp", "not an OCSP request", "malformedrequest"},
		{"empty POST", "POST", "/ocsp", "", "malformedrequest"},
		{"bad base64 GET", "GET", "/ocsp/not*base64!", "", "malformedrequest"},
		{"base64 of garbage GET", "GET", "/ocsp/aGVsbG8gd29ybGQ=", "", "malformedrequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/ocsp-request")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			p := filepath.Join(e.dir, "resp.der")
			f, _ := os.Create(p)
			f.ReadFrom(resp.Body)
			f.Close()
			if resp.Header.Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
			// openssl parses the response and prints its status.
			cmd := exec.Command("openssl", "ocsp", "-respin", p, "-resp_text", "-noverify")
			text, _ := cmd.CombinedOutput()
			mustContain(t, "openssl ocsp -respin", strings.ToLower(string(text)), tc.want)
		})
	}
}

func TestOCSPGetForm(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	root, issuing := e.chain()
	leaf := e.file("citizen.pem", "CERTIFICATE", c.DER)
	reqFile := filepath.Join(e.dir, "req.der")
	openssl(t, e.dir, "ocsp", "-issuer", issuing, "-sha256", "-cert", leaf, "-no_nonce", "-reqout", reqFile)
	der, err := os.ReadFile(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.srv.URL + "/ocsp/" + urlBase64(der))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("GET response Cache-Control %q, want a max-age", cc)
	}
	respFile := filepath.Join(e.dir, "resp.der")
	f, _ := os.Create(respFile)
	f.ReadFrom(resp.Body)
	f.Close()
	out := openssl(t, e.dir, "ocsp", "-respin", respFile, "-issuer", issuing, "-sha256", "-cert", leaf, "-CAfile", root)
	mustContain(t, "GET form", out, "citizen.pem: good", "Response verify OK")
}

// urlBase64 is RFC 6960 appendix A.1: base64, then URL-encoded.
func urlBase64(der []byte) string {
	s := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(base64Std(der))
	return s
}

func TestRenew(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	old, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := e.ca.Renew(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	if renewed.KeyID == old.KeyID || renewed.Serial == old.Serial {
		t.Fatalf("renewal kept the key or serial")
	}
	if samePub(renewed.Cert, old.Cert) {
		t.Fatalf("renewal kept the public key")
	}
	prev, err := e.ca.Certificate(e.ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if prev.Status != "revoked" || prev.Reason != ca.ReasonSuperseded || prev.SupersededBy != renewed.ID {
		t.Errorf("old certificate after renewal: status %s reason %s superseded by %q", prev.Status, prev.Reason, prev.SupersededBy)
	}
	if k, err := e.ks.Key(e.ctx, old.KeyID); err != nil || k.DestroyedAt.IsZero() {
		t.Errorf("old key not destroyed: %+v %v", k, err)
	}
	root, issuing := e.chain()
	mustContain(t, "old", e.ocspStatus(root, issuing, e.file("old.pem", "CERTIFICATE", old.DER)), "old.pem: revoked", "Reason: superseded")
	mustContain(t, "new", e.ocspStatus(root, issuing, e.file("new.pem", "CERTIFICATE", renewed.DER)), "new.pem: good")
	cur, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil || cur.ID != renewed.ID {
		t.Errorf("current certificate %v, %v; want the renewed one", cur, err)
	}
	list, err := e.ca.Certificates(e.ctx, ca.ListOptions{Citizen: "12345678Z"})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d certificates, %v", len(list), err)
	}
	valid, err := e.ca.Certificates(e.ctx, ca.ListOptions{Status: "valid"})
	if err != nil || len(valid) != 1 || valid[0].ID != renewed.ID {
		t.Errorf("valid list: %v, %v", valid, err)
	}
	if _, err := e.ca.Certificates(e.ctx, ca.ListOptions{Status: "bogus"}); err == nil {
		t.Errorf("bad status filter accepted")
	}
}

func samePub(a, b *x509.Certificate) bool {
	return string(a.RawSubjectPublicKeyInfo) == string(b.RawSubjectPublicKeyInfo)
}

func TestRegistryRevokesOnDowngradeAndRemoval(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	tests := []struct {
		name   string
		id     string
		act    func(id string) error
		reason ca.Reason
	}{
		{"downgrade", "12345678Z", func(id string) error {
			_, err := e.reg.Downgrade(e.ctx, registrar, id, "identity check disputed")
			return err
		}, ca.ReasonPrivilegeWithdrawn},
		{"removal", "23456789D", func(id string) error {
			_, err := e.reg.Remove(e.ctx, registrar, id, "deceased")
			return err
		}, ca.ReasonCessationOfOperation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.advanced(tc.id, "Ana", "López")
			c, err := e.ca.EnsureCertificate(e.ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.act(tc.id); err != nil {
				t.Fatal(err)
			}
			got, err := e.ca.Certificate(e.ctx, c.ID)
			if err != nil || got.Status != "revoked" || got.Reason != tc.reason {
				t.Fatalf("after %s: %+v, %v; want revoked with %s", tc.name, got, err, tc.reason)
			}
			if _, _, err := sign(t, e.ks, c.KeyID); !errors.Is(err, keystore.ErrKeyDestroyed) {
				t.Errorf("key still signs: %v", err)
			}
			if _, err := e.ca.EnsureCertificate(e.ctx, tc.id); err == nil {
				t.Errorf("citizen got a new certificate after %s", tc.name)
			}
		})
	}
}

func TestCRLSchedule(t *testing.T) {
	e := newEnv(t, func(c *ca.Config) { c.CRLInterval = 100 * time.Millisecond; c.CRLValidity = time.Hour })
	e.init()
	first, err := e.ca.CRL(e.ctx, "issuing")
	if err != nil {
		t.Fatal(err)
	}
	e.ca.Start()
	deadline := time.Now().Add(30 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		crl, err := e.ca.CRL(e.ctx, "issuing")
		if err != nil {
			t.Fatal(err)
		}
		if got = crl.Number; got >= first.Number+2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.ca.Stop()
	if got < first.Number+2 {
		t.Fatalf("CRL number stayed at %d (first %d): no scheduled refresh", got, first.Number)
	}
	stopped, _ := e.ca.CRL(e.ctx, "issuing")
	time.Sleep(300 * time.Millisecond)
	if later, _ := e.ca.CRL(e.ctx, "issuing"); later.Number != stopped.Number {
		t.Errorf("CRLs still produced after Stop: %d -> %d", stopped.Number, later.Number)
	}
	e.ca.Stop() // stopping twice is harmless

	root, _ := e.chain()
	rootCRL := e.crl("root")
	mustContain(t, "root crl", openssl(t, e.dir, "crl", "-inform", "DER", "-in", rootCRL, "-CAfile", root, "-noout", "-text"),
		"verify OK", "No Revoked Certificates")
}

func TestHTTPErrors(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		path   string
		status int
	}{
		{"/crl/issuing.crl", 404}, // not initialised yet
		{"/crl/other.crl", 404},
		{"/ca/issuing.crt", 404},
		{"/ca/nope.crt", 404},
	}
	for _, tc := range tests {
		resp, err := http.Get(e.srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want %d problem+json", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
		}
	}
	e.init()
	for _, name := range []string{"root", "issuing", "ocsp"} {
		resp, err := http.Get(e.srv.URL + "/ca/" + name + ".crt")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(e.dir, name+".der")
		f, _ := os.Create(p)
		f.ReadFrom(resp.Body)
		f.Close()
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-cert" {
			t.Errorf("GET /ca/%s.crt: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		openssl(t, e.dir, "x509", "-inform", "DER", "-in", p, "-noout")
	}
}

// colons spells a hex serial as openssl prints it: "4a:0f:...".
func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:min(i+2, len(hex))])
	}
	return strings.Join(parts, ":")
}
