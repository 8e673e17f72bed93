package tsa

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rewriting is a real second TSA that misbehaves: it changes the query
// before its own Server signs a token for it, or changes the reply after.
func rewriting(t testing.TB, s *Server, query func(*request), reply func([]byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read query: %v", err)
			return
		}
		if query != nil {
			var req request
			if _, err := asn1.Unmarshal(body, &req); err != nil {
				t.Errorf("parse query: %v", err)
				return
			}
			query(&req)
			if body, err = asn1.Marshal(req); err != nil {
				t.Errorf("marshal query: %v", err)
				return
			}
		}
		out, _, err := s.Respond(r.Context(), body)
		if err != nil {
			t.Errorf("respond: %v", err)
		}
		if reply != nil {
			reply(out)
		}
		w.Header().Set("Content-Type", ReplyContentType)
		w.Write(out)
	})
}

// withCert makes s sign with a certificate for its key other than the one
// NewServer would accept, as a misconfigured TSA elsewhere would.
func withCert(t testing.TB, s *Server, cert *x509.Certificate) *Server {
	t.Helper()
	c := *s
	c.cfg.Cert = cert
	ess, err := essAttribute(cert)
	if err != nil {
		t.Fatal(err)
	}
	c.essAttr = ess
	c.certs = append([]*x509.Certificate{cert}, c.cfg.Chain...)
	if c.tsaName, err = tsaName(cert); err != nil {
		t.Fatal(err)
	}
	return &c
}

func leafCert(t testing.TB, p *pki, pub crypto.PublicKey, tweak func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "Misconfigured TSA"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	tweak(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.issuing, pub, p.issuingKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func criticalEKU(oids ...asn1.ObjectIdentifier) pkix.Extension {
	v, _ := asn1.Marshal(oids)
	return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v}
}

// TestClient runs the client against good, absent and misbehaving TSAs.
func TestClient(t *testing.T) {
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Other")
	good := e.tsa(p, keystore.ECP256, nil)
	goodURL := serve(t, good)
	down := closedURL(t)
	pub := good.cfg.Signer.Public()

	tests := []struct {
		name    string
		urls    []string
		policy  asn1.ObjectIdentifier
		wantURL string // on success
		kind    error  // on failure
		reason  error
	}{
		{name: "one good TSA", urls: []string{goodURL}, wantURL: goodURL},
		{name: "first down, second good", urls: []string{down, goodURL}, wantURL: goodURL},
		{name: "policy asked and granted", urls: []string{goodURL}, policy: testPolicy, wantURL: goodURL},
		{name: "all down", urls: []string{down, closedURL(t)}, kind: ErrUnavailable},
		{name: "HTTP 503", urls: []string{serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		}))}, kind: ErrUnavailable},
		{name: "too slow", urls: []string{serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))}, kind: ErrUnavailable},
		{name: "wrong nonce", urls: []string{serve(t, rewriting(t, good, func(r *request) {
			r.Nonce = new(big.Int).Add(r.Nonce, big.NewInt(1))
		}, nil))}, kind: ErrBadReply, reason: ErrNonceMismatch},
		{name: "nonce dropped", urls: []string{serve(t, rewriting(t, good, func(r *request) { r.Nonce = nil }, nil))},
			kind: ErrBadReply, reason: ErrNonceMismatch},
		{name: "wrong imprint", urls: []string{serve(t, rewriting(t, good, func(r *request) {
			r.MessageImprint.HashedMessage = append([]byte(nil), r.MessageImprint.HashedMessage...)
			r.MessageImprint.HashedMessage[0] ^= 0xff
		}, nil))}, kind: ErrBadReply, reason: ErrImprintMismatch},
		{name: "wrong imprint hash", urls: []string{serve(t, rewriting(t, good, func(r *request) {
			d := sha256.Sum256([]byte("other"))
			r.MessageImprint = messageImprint{HashAlgorithm: algID(oidSHA512), HashedMessage: append(d[:], d[:]...)}
		}, nil))}, kind: ErrBadReply, reason: ErrImprintMismatch},
		{name: "no certificate despite certReq", urls: []string{serve(t, rewriting(t, good, func(r *request) { r.CertReq = false }, nil))},
			kind: ErrBadReply, reason: ErrMalformed},
		{name: "signature changed", urls: []string{serve(t, rewriting(t, good, nil, func(b []byte) { b[len(b)-1] ^= 0x01 }))},
			kind: ErrBadReply, reason: ErrSignature},
		{name: "unconfigured root", urls: []string{serve(t, e.tsa(other, keystore.ECP256, nil))}, kind: ErrBadReply, reason: ErrUntrusted},
		{name: "EKU not critical", urls: []string{serve(t, withCert(t, good, leafCert(t, p, pub, func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}
		})))}, kind: ErrBadReply, reason: ErrCertificateUsage},
		{name: "EKU not timeStamping alone", urls: []string{serve(t, withCert(t, good, leafCert(t, p, pub, func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{criticalEKU(oidKPTimeStamping, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3})}
		})))}, kind: ErrBadReply, reason: ErrCertificateUsage},
		{name: "no EKU", urls: []string{serve(t, withCert(t, good, leafCert(t, p, pub, func(*x509.Certificate) {})))},
			kind: ErrBadReply, reason: ErrCertificateUsage},
		{name: "ESS names another certificate", urls: []string{serve(t, func() *Server {
			s := *good
			ess, err := essAttribute(p.issuing)
			if err != nil {
				t.Fatal(err)
			}
			s.essAttr = ess
			return &s
		}())}, kind: ErrBadReply, reason: ErrSigningCertMismatch},
		{name: "tsa name of another authority", urls: []string{serve(t, func() *Server {
			s := *good
			var err error
			if s.tsaName, err = tsaName(p.issuing); err != nil {
				t.Fatal(err)
			}
			return &s
		}())}, kind: ErrBadReply, reason: ErrTSANameMismatch},
		{name: "policy refused", urls: []string{goodURL}, policy: asn1.ObjectIdentifier{1, 2, 3, 4}, kind: ErrRejected},
		{name: "bad TSA first, good second", urls: []string{serve(t, rewriting(t, good, func(r *request) { r.Nonce = big.NewInt(7) }, nil)), goodURL},
			wantURL: goodURL},
	}
	doc, err := os.ReadFile("testdata/document.txt")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(doc)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c, err := NewClient(ClientConfig{
				URLs: tc.urls, Roots: p.roots(), Policy: tc.policy,
				Timeout: 300 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond,
				Registerer: reg,
			})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Timestamp(context.Background(), crypto.SHA256, digest[:])
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("timestamp: %v", err)
				}
				if tok.URL != tc.wantURL || tok.Hash != crypto.SHA256 || string(tok.Digest) != string(digest[:]) ||
					!tok.Policy.Equal(testPolicy) || tok.Serial == nil || tok.Cert == nil || len(tok.Chain) != 3 ||
					time.Since(tok.Time).Abs() > 10*time.Second || tok.Accuracy != time.Second {
					t.Fatalf("token %+v", tok)
				}
				if fails := testutil.CollectAndCount(reg, "firma_tsa_failures_total"); fails != len(tc.urls)-1 {
					t.Errorf("failure series = %d, want %d", fails, len(tc.urls)-1)
				}
				if n := testutil.CollectAndCount(reg, "firma_tsa_request_duration_seconds"); n != len(tc.urls) {
					t.Errorf("duration series = %d, want %d", n, len(tc.urls))
				}
				return
			}
			if err == nil {
				t.Fatalf("timestamp succeeded: %+v", tok)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			for _, other := range []error{ErrUnavailable, ErrBadReply, ErrRejected} {
				if other != tc.kind && errors.Is(err, other) {
					t.Errorf("error is also %v: %v", other, err)
				}
			}
			if tc.reason != nil && !errors.Is(err, tc.reason) {
				t.Fatalf("error %v, want reason %v", err, tc.reason)
			}
			if tc.kind == ErrRejected {
				var re *RejectionError
				if !errors.As(err, &re) || re.FailInfo != FailUnacceptedPolicy {
					t.Fatalf("rejection %+v", re)
				}
			}
			if got := testutil.CollectAndCount(reg, "firma_tsa_failures_total"); got == 0 {
				t.Errorf("no failure counted")
			}
		})
	}
}

// TestClientTokenOpenSSL checks the client's token with openssl, as a
// verifier of a CAdES signature-time-stamp would.
func TestClientTokenOpenSSL(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	srv := e.tsa(p, keystore.ECP256, nil)
	c, err := NewClient(ClientConfig{URLs: []string{serve(t, srv)}, Roots: p.roots()})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("signature value"))
	tok, err := c.Timestamp(context.Background(), crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tf := filepath.Join(dir, "token.der")
	os.WriteFile(tf, tok.DER, 0o600)
	caFile := writePEM(t, filepath.Join(dir, "root.pem"), p.root)
	untrusted := writePEM(t, filepath.Join(dir, "tsa.pem"), srv.Certificate(), p.issuing)
	out, err := run(t, "openssl", "ts", "-verify", "-token_in", "-in", tf, "-digest", hex.EncodeToString(digest[:]), "-CAfile", caFile, "-untrusted", untrusted)
	if err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	digest[0] ^= 1
	out, err = run(t, "openssl", "ts", "-verify", "-token_in", "-in", tf, "-digest", hex.EncodeToString(digest[:]), "-CAfile", caFile, "-untrusted", untrusted)
	if err == nil || strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl accepted the token for another digest:\n%s", out)
	}
}

func TestClientBadInput(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	tests := []struct {
		name string
		cfg  ClientConfig
		hash crypto.Hash
		dig  []byte
	}{
		{"no URL", ClientConfig{Roots: p.roots()}, crypto.SHA256, make([]byte, 32)},
		{"no roots", ClientConfig{URLs: []string{"http://127.0.0.1:1/"}}, crypto.SHA256, make([]byte, 32)},
		{"ftp URL", ClientConfig{URLs: []string{"ftp://tsa.example/"}, Roots: p.roots()}, crypto.SHA256, make([]byte, 32)},
		{"sha1", ClientConfig{URLs: []string{"http://127.0.0.1:1/"}, Roots: p.roots()}, crypto.SHA1, make([]byte, 20)},
		{"short digest", ClientConfig{URLs: []string{"http://127.0.0.1:1/"}, Roots: p.roots()}, crypto.SHA256, make([]byte, 31)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(tc.cfg)
			if err == nil {
				_, err = c.Timestamp(context.Background(), tc.hash, tc.dig)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("bad input reached the network: %v", err)
			}
		})
	}
}

// TestClientRedactsCredentials checks a password in a TSA URL reaches
// neither errors nor metrics.
func TestClientRedactsCredentials(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	reg := prometheus.NewRegistry()
	u := strings.Replace(closedURL(t), "http://", "http://user:s3cr3t-pw@", 1)
	c, err := NewClient(ClientConfig{URLs: []string{u}, Roots: p.roots(), Retries: -1, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Timestamp(context.Background(), crypto.SHA256, make([]byte, 32))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("password in error: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.Contains(mf.String(), "s3cr3t-pw") {
			t.Fatalf("password in metric %s", mf.GetName())
		}
	}
}
