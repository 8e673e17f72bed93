package verify_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/api/rest/pkihttp"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// With the service's own CA: a citizen's certificate from ca.Authority,
// its HSM key, and revocation read from the CA's OCSP responder and CRL
// over HTTP (verify.Online) and in process (verify.OCSPResponder on
// RespondOCSP).
func TestWithServiceCA(t *testing.T) {
	ctx := context.Background()
	// Both tokens exist before the first keystore opens: SoftHSM2 lists
	// tokens when the process initialises the module.
	tok := softhsmtest.New(t)
	pki := testpki.New(t) // its TSA stands in for the built-in one
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
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
	var h atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	authority, err := ca.New(ca.Config{BaseURL: srv.URL, Organization: "Firma Test"}, ks, db, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(db, registry.Options{SMS: outbox, Revoker: ca.CitizenRevoker{CA: authority},
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	authority.SetCitizens(reg)
	handler := pkihttp.Handler(authority, nil)
	h.Store(&handler)
	if _, err := authority.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RegisterInPerson(ctx, registry.Staff{Name: "registrar-test", Role: policy.Registrar},
		registry.Person{ID: "12345678Z", GivenName: "Juan", Surnames: "Español", Mobile: "+34600123456", Email: "juan@example.es"}); err != nil {
		t.Fatal(err)
	}
	c, err := authority.EnsureCertificate(ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.Signer(ctx, c.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{leaf, authority.Issuing(), authority.Root()}

	doc := []byte("Solicitud firmada con el certificado del ciudadano")
	bt, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inProcess := verify.OCSPResponder(func(ctx context.Context, q []byte) ([]byte, error) {
		r, err := authority.RespondOCSP(ctx, q)
		if err != nil {
			return nil, err
		}
		return r.DER, nil
	})
	verifiers := map[string]*verify.Verifier{}
	for name, rc := range map[string]verify.RevocationChecker{
		"online":     &verify.Online{},
		"in-process": verify.Checkers{inProcess, &verify.Online{}}, // the CA's responder answers for citizens, Online for the issuing CA
	} {
		v, err := verify.New(verify.Config{Roots: testpki.Pool(authority.Root()), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: rc})
		if err != nil {
			t.Fatal(err)
		}
		verifiers[name] = v
	}
	check := func(t *testing.T, v *verify.Verifier, sig []byte, want verify.Verdict, reason string) {
		t.Helper()
		r, err := v.CAdES(ctx, sig, bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		var rc verify.Check
		for _, c := range r.Signatures[0].Checks {
			if c.Name == verify.CheckRevocation {
				rc = c
			}
		}
		if r.Verdict != want || !strings.Contains(rc.Reason, reason) {
			t.Fatalf("verdict %s, revocation %q; want %s and %q; checks %+v", r.Verdict, rc.Reason, want, reason, r.Signatures[0].Checks)
		}
	}
	for name, v := range verifiers {
		t.Run(name+"/live", func(t *testing.T) {
			check(t, v, bt, verify.Valid, "good per ")
			check(t, v, bb, verify.Valid, "good per ")
		})
	}
	// Revoked clearly after the timestamp: more than the revocation time's
	// one-second resolution plus the token's accuracy later.
	time.Sleep(time.Second + 1100*time.Millisecond)
	if _, err := authority.Revoke(ctx, c.Serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	for name, v := range verifiers {
		t.Run(name+"/revoked", func(t *testing.T) {
			// The timestamp proves the B-T signature came before the
			// revocation; nothing proves it for B-B.
			check(t, v, bt, verify.Valid, "after the timestamp")
			check(t, v, bb, verify.VerdictIndeterminate, "no timestamp proves")
		})
	}
}
