package ca_test

import (
	"crypto/x509"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/ca"
	"golang.org/x/crypto/ocsp"
)

func TestExpiredCertificateIsReplaced(t *testing.T) {
	// A validity of a nanosecond makes every certificate expired as soon
	// as it is issued (notAfter is truncated to the second).
	e := newEnv(t, func(c *ca.Config) { c.CitizenValidity = time.Nanosecond })
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	first, err := e.ca.Issue(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	next, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == first.ID || next.KeyID == first.KeyID {
		t.Fatalf("an expired certificate was handed out again")
	}
	old, err := e.ca.Certificate(e.ctx, first.ID)
	if err != nil || old.Status != "expired" {
		t.Fatalf("old certificate %+v, %v; want expired", old, err)
	}
	if _, _, err := sign(t, e.ks, first.KeyID); err == nil {
		t.Errorf("the key of an expired certificate still signs")
	}
	// Revoking an expired certificate is refused but destroys its key if
	// somehow still there.
	if _, err := e.ca.Revoke(e.ctx, first.ID, ca.ReasonKeyCompromise); err == nil {
		t.Errorf("revoking an expired certificate succeeded")
	}
}

func TestOCSPResponderRollover(t *testing.T) {
	// The responder certificate made at init lives a millisecond, so the
	// next process to load finds it past two thirds of its life.
	e := newEnv(t, func(c *ca.Config) { c.OCSPValidity = time.Millisecond })
	first := e.init().OCSP
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	root, issuing := e.chain()
	leaf := e.file("citizen.pem", "CERTIFICATE", c.DER)

	// With its responder certificate expired, the issuing CA answers
	// itself, and relying parties still accept the answer.
	mustContain(t, "expired responder", e.ocspStatus(root, issuing, leaf), "citizen.pem: good")
	if got := responder(t, e, c.Cert); !got.Equal(e.ca.Issuing()) {
		t.Errorf("response signed by %s, want the issuing CA", got.Subject)
	}

	cfg := e.cfg
	cfg.OCSPValidity = 0 // default, 90 days
	next, err := ca.New(cfg, e.ks, e.db, e.reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Load(e.ctx); err != nil {
		t.Fatal(err)
	}
	second := next.OCSPResponder()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("responder certificate past its time was not replaced")
	}
	keys, err := e.ks.Keys(e.ctx, ca.OwnerOCSP, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, k := range keys {
		if k.DestroyedAt.IsZero() {
			live++
		}
	}
	if len(keys) != 2 || live != 1 {
		t.Fatalf("responder keys: %d, %d live; want the old one destroyed", len(keys), live)
	}
	e.ca = next
	if got := responder(t, e, c.Cert); !got.Equal(second) {
		t.Errorf("response signed by %s, want the new responder", got.Subject)
	}
	mustContain(t, "new responder", openssl(t, e.dir, "x509", "-in", e.file("ocsp.pem", "CERTIFICATE", second.Raw), "-noout", "-text"), "OCSP Signing")
}

// responder asks e.ca about cert and returns the certificate whose key
// signed the answer.
func responder(t *testing.T, e *env, cert *x509.Certificate) *x509.Certificate {
	t.Helper()
	reqDER, err := ocsp.CreateRequest(cert, e.ca.Issuing(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.ca.RespondOCSP(e.ctx, reqDER)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.ParseResponseForCert(res.DER, cert, e.ca.Issuing())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != ocsp.Good {
		t.Fatalf("status %d, want good", resp.Status)
	}
	if resp.Certificate != nil {
		return resp.Certificate
	}
	return e.ca.Issuing()
}

// Two replicas on one store and token asked for a first certificate at
// the same moment issue one between them; the loser's key is destroyed.
func TestConcurrentFirstUse(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	other, err := ca.New(e.cfg, e.ks, e.db, e.reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Load(e.ctx); err != nil {
		t.Fatal(err)
	}
	const callers = 8
	ids := make(chan string, callers)
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		a := e.ca
		if i%2 == 1 {
			a = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := a.EnsureCertificate(e.ctx, "12345678Z")
			if err != nil {
				errs <- err
				return
			}
			ids <- c.ID
		}()
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Errorf("EnsureCertificate: %v", err)
	}
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("%d different certificates handed out: %v", len(seen), seen)
	}
	keys, err := e.ks.Keys(e.ctx, "12345678Z", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, k := range keys {
		if k.DestroyedAt.IsZero() {
			live++
		}
	}
	if live != 1 {
		t.Errorf("%d live keys for the citizen (of %d made), want 1", live, len(keys))
	}
}

// Answers about serials never issued here are rate limited: past the
// limit the responder says tryLater without signing, while certificates
// it issued are still answered.
func TestOCSPUnknownRateLimit(t *testing.T) {
	e := newEnv(t, func(c *ca.Config) { c.OCSPUnknownRate = 0.001 }) // burst 1, then one per 1000 s
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range 3 {
		fake := *c.Cert
		fake.SerialNumber = new(big.Int).SetInt64(int64(1000 + i))
		req, err := ocsp.CreateRequest(&fake, e.ca.Issuing(), nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.ca.RespondOCSP(e.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Status)
		if _, err := ocsp.ParseResponse(res.DER, nil); res.Status == "trylater" && err == nil {
			t.Errorf("tryLater answer parsed as a signed response")
		}
	}
	if strings.Join(got, ",") != "unknown,trylater,trylater" {
		t.Errorf("statuses %v, want unknown then trylater", got)
	}
	root, issuing := e.chain()
	mustContain(t, "issued certificate", e.ocspStatus(root, issuing, e.file("citizen.pem", "CERTIFICATE", c.DER)), "citizen.pem: good")
}
