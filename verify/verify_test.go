package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

func newVerifier(t *testing.T, pki *testpki.PKI, reg prometheus.Registerer) *verify.Verifier {
	t.Helper()
	v, err := verify.New(verify.Config{
		Roots:      testpki.Pool(pki.Root.Cert),
		TSARoots:   testpki.Pool(pki.TSARoot.Cert),
		Revocation: &verify.Online{},
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func statuses(s *verify.Signature) map[string]verify.Status {
	m := map[string]verify.Status{}
	for _, c := range s.Checks {
		m[c.Name] = c.Status
	}
	return m
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestCAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	reg := prometheus.NewRegistry()
	v := newVerifier(t, pki, reg)
	doc := []byte("Declaración responsable, expediente 2026/4711.\n")
	ts := pki.Timestamper(t)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	rsaKey, rsaChain := pki.User(t, keystore.RSA2048, "PEDRO SANZ")
	sign := func(t *testing.T, k crypto.Signer, c []*x509.Certificate, opt signer.Options) []byte {
		t.Helper()
		sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), k, c, opt)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	bt := sign(t, key, chain, signer.Options{Level: signer.LevelT, Timestamper: ts})
	bb := sign(t, key, chain, signer.Options{})
	pss := sign(t, rsaKey, rsaChain, signer.Options{Level: signer.LevelT, Timestamper: ts, PSS: true, Hash: crypto.SHA384})
	i := bytes.Index(bt, []byte{0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0e}) // id-aa-signatureTimeStampToken
	if i < 0 {
		t.Fatal("no timestamp attribute in the B-T signature")
	}
	otherRoots, _ := verify.New(verify.Config{Roots: testpki.Pool(pki.TSARoot.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: &verify.Online{}})
	noTSARoot, _ := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), Revocation: &verify.Online{}})

	tests := []struct {
		name    string
		v       *verify.Verifier
		sig     []byte
		content []byte
		verdict verify.Verdict
		level   string
		want    map[string]verify.Status
	}{
		{"B-T valid", v, bt, doc, verify.Valid, "B-T", map[string]verify.Status{
			verify.CheckIntegrity: verify.Passed, verify.CheckSigningCert: verify.Passed, verify.CheckTimestamp: verify.Passed,
			verify.CheckChain: verify.Passed, verify.CheckRevocation: verify.Passed}},
		{"B-B valid", v, bb, doc, verify.Valid, "B-B", map[string]verify.Status{verify.CheckIntegrity: verify.Passed, verify.CheckChain: verify.Passed}},
		{"rsa-pss sha384 B-T valid", v, pss, doc, verify.Valid, "B-T", map[string]verify.Status{verify.CheckIntegrity: verify.Passed, verify.CheckTimestamp: verify.Passed}},
		{"document changed", v, bt, flip(doc, 4), verify.Invalid, "B-T", map[string]verify.Status{verify.CheckIntegrity: verify.Failed}},
		{"signature value changed", v, flip(bt, i-20), doc, verify.Invalid, "B-T", map[string]verify.Status{verify.CheckIntegrity: verify.Failed}},
		{"token changed", v, flip(bt, len(bt)-5), doc, verify.Invalid, "B-T", map[string]verify.Status{verify.CheckIntegrity: verify.Passed, verify.CheckTimestamp: verify.Failed}},
		{"untrusted root", otherRoots, bt, doc, verify.VerdictIndeterminate, "B-T", map[string]verify.Status{verify.CheckIntegrity: verify.Passed, verify.CheckChain: verify.Indeterminate}},
		{"untrusted TSA", noTSARoot, bt, doc, verify.VerdictIndeterminate, "B-T", map[string]verify.Status{verify.CheckTimestamp: verify.Indeterminate, verify.CheckChain: verify.Passed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.v.CAdES(ctx, tc.sig, bytes.NewReader(tc.content))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if len(r.Signatures) != 1 {
				t.Fatalf("%d signatures reported", len(r.Signatures))
			}
			s := r.Signatures[0]
			if r.Verdict != tc.verdict || s.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s; checks %+v", r.Verdict, tc.verdict, s.Checks)
			}
			if s.Level != tc.level {
				t.Errorf("level %s, want %s", s.Level, tc.level)
			}
			got := statuses(s)
			for name, st := range tc.want {
				if got[name] != st {
					t.Errorf("check %s = %s, want %s; checks %+v", name, got[name], st, s.Checks)
				}
			}
			for _, c := range s.Checks {
				if c.Reason == "" {
					t.Errorf("check %s has no reason", c.Name)
				}
			}
			if tc.level == "B-T" && got[verify.CheckTimestamp] == verify.Passed {
				if s.TimestampTime.IsZero() || time.Since(s.TimestampTime) > time.Hour || !s.ValidationTime.Equal(s.TimestampTime) {
					t.Errorf("timestamp time %v, validation time %v", s.TimestampTime, s.ValidationTime)
				}
			}
		})
	}
	if n, err := testutil.GatherAndCount(reg, "firma_verify_signatures_total"); err != nil || n == 0 {
		t.Errorf("verdict metric not recorded: %d series, %v", n, err)
	}
}

func TestCAdESDigest(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	key, chain := pki.User(t, keystore.ECP256, "ANA RUIZ")
	doc := []byte("contrato")
	d := sha256.Sum256(doc)
	sig, err := signer.CAdES(ctx, d[:], key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.CAdESDigest(ctx, sig, crypto.SHA256, d[:])
	if err != nil || r.Verdict != verify.Valid {
		t.Fatalf("digest verify: %v %+v", err, r)
	}
	other := sha256.Sum256([]byte("otro contrato"))
	r, err = v.CAdESDigest(ctx, sig, crypto.SHA256, other[:])
	if err != nil || r.Verdict != verify.Invalid {
		t.Fatalf("verify against another digest: %v %+v", err, r)
	}
	bad := []struct {
		name   string
		sig    []byte
		h      crypto.Hash
		digest []byte
		want   error
	}{
		{"garbage", []byte("not a signature"), crypto.SHA256, d[:], verify.ErrMalformed},
		{"empty", nil, crypto.SHA256, d[:], verify.ErrMalformed},
		{"truncated", sig[:len(sig)/2], crypto.SHA256, d[:], verify.ErrMalformed},
		{"wrong hash", sig, crypto.SHA384, make([]byte, 48), verify.ErrDigest},
		{"short digest", sig, crypto.SHA256, d[:10], verify.ErrDigest},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.CAdESDigest(ctx, tc.sig, tc.h, tc.digest)
			if !errors.Is(err, tc.want) || r != nil {
				t.Fatalf("got %+v, %v; want error %v", r, err, tc.want)
			}
		})
	}
	if _, err := v.CAdES(ctx, sig, nil); !errors.Is(err, verify.ErrNoContent) {
		t.Fatalf("detached without content: %v", err)
	}
}

func TestRevocation(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	doc := []byte("documento")
	signAs := func(t *testing.T, level signer.Level) ([]byte, *x509.Certificate) {
		key, chain := pki.User(t, keystore.ECP256, "CIUDADANO")
		sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, signer.Options{Level: level, Timestamper: pki.Timestamper(t)})
		if err != nil {
			t.Fatal(err)
		}
		return sig, chain[0]
	}
	tests := []struct {
		name     string
		level    signer.Level
		revoke   time.Duration // from now; 0 means not revoked
		ocspDown bool
		crlDown  bool
		want     verify.Status
		reason   string
	}{
		{"good by ocsp", signer.LevelT, 0, false, false, verify.Passed, "good per ocsp"},
		{"good by crl when ocsp is down", signer.LevelT, 0, true, false, verify.Passed, "good per crl"},
		{"both down", signer.LevelT, 0, true, true, verify.Indeterminate, "revocation status unavailable"},
		{"revoked before the timestamp", signer.LevelT, -time.Hour, false, false, verify.Failed, "revoked at"},
		{"revoked before, seen in the crl", signer.LevelT, -time.Hour, true, false, verify.Failed, "per crl"},
		{"revoked after the timestamp", signer.LevelT, time.Hour, false, false, verify.Passed, "after the timestamp"},
		{"revoked within the timestamp's accuracy", signer.LevelT, time.Nanosecond, false, false, verify.Indeterminate, "too close to the timestamp"},
		{"revoked, no timestamp to prove when", signer.LevelB, time.Hour, false, false, verify.Indeterminate, "no timestamp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, cert := signAs(t, tc.level)
			if tc.revoke != 0 {
				pki.Revoke(cert, time.Now().Add(tc.revoke))
			}
			pki.SetDown(tc.ocspDown, tc.crlDown)
			defer pki.SetDown(false, false)
			r, err := v.CAdES(ctx, sig, bytes.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			s := r.Signatures[0]
			var rc verify.Check
			for _, c := range s.Checks {
				if c.Name == verify.CheckRevocation {
					rc = c
				}
			}
			if rc.Status != tc.want || !strings.Contains(rc.Reason, tc.reason) {
				t.Fatalf("revocation %s %q, want %s containing %q", rc.Status, rc.Reason, tc.want, tc.reason)
			}
			wantVerdict := map[verify.Status]verify.Verdict{verify.Passed: verify.Valid, verify.Failed: verify.Invalid, verify.Indeterminate: verify.VerdictIndeterminate}[tc.want]
			if r.Verdict != wantVerdict {
				t.Errorf("verdict %s, want %s", r.Verdict, wantVerdict)
			}
		})
	}
}

// The OCSPResponder adapter serves in-process responders like the ca's.
func TestOCSPResponderAdapter(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	_, chain := pki.User(t, keystore.ECP256, "CIUDADANO")
	responder := verify.OCSPResponder(func(ctx context.Context, q []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, pki.BaseURL+"/ocsp/"+pki.Issuing.Name, bytes.NewReader(q))
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	})
	r, err := responder.Revocation(ctx, chain[0], chain[1])
	if err != nil || r.Status != verify.Good {
		t.Fatalf("good certificate: %+v, %v", r, err)
	}
	pki.Revoke(chain[0], time.Now().Add(-time.Minute))
	r, err = verify.Checkers{responder, &verify.Online{}}.Revocation(ctx, chain[0], chain[1])
	if err != nil || r.Status != verify.Revoked {
		t.Fatalf("revoked certificate: %+v, %v", r, err)
	}
	// A response for another issuer is refused, not believed.
	if _, err := responder.Revocation(ctx, chain[0], pki.TSARoot.Cert); err == nil {
		t.Fatal("response checked against the wrong issuer was accepted")
	}
}

// With CacheTTL, a second question about the same certificate is answered
// without the responders; without it, every question goes out.
func TestOnlineCache(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	_, chain := pki.User(t, keystore.ECP256, "CIUDADANO")
	cachedOnline := &verify.Online{CacheTTL: time.Hour}
	plain := &verify.Online{}
	for _, o := range []*verify.Online{cachedOnline, plain} {
		if r, err := o.Revocation(ctx, chain[0], chain[1]); err != nil || r.Status != verify.Good {
			t.Fatalf("first question: %+v %v", r, err)
		}
	}
	pki.SetDown(true, true)
	defer pki.SetDown(false, false)
	if r, err := cachedOnline.Revocation(ctx, chain[0], chain[1]); err != nil || r.Status != verify.Good {
		t.Fatalf("cached answer: %+v %v", r, err)
	}
	if _, err := plain.Revocation(ctx, chain[0], chain[1]); !errors.Is(err, verify.ErrRevocationUnavailable) {
		t.Fatalf("uncached, responders down: %v", err)
	}
	// Another certificate is not in the cache.
	if _, err := cachedOnline.Revocation(ctx, chain[1], chain[2]); !errors.Is(err, verify.ErrRevocationUnavailable) {
		t.Fatalf("another certificate, responders down: %v", err)
	}
}
