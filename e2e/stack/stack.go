// Package stack assembles firmad's signing parts for tests: a fresh
// SoftHSM2 token, a SQLite file, the citizen registry, the CA, the signing
// core, the portal registry, the SMS outbox, the transaction core, and
// the HTTP handlers firmad serves (portal REST API, approval page, CSC API) on a loopback
// httptest server. Nothing is mocked.
package stack

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/api/rest/cschttp"
	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/api/rest/pkihttp"
	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/web"
)

// Password is every test citizen's Cl@ve Permanente password.
const Password = "Correct-Horse-Battery-7"

// Options tunes a Stack; the zero value is firmad's defaults.
type Options struct {
	CA          func(*ca.Config)
	Transaction func(*transaction.Options)
	CSC         func(*csc.Options)
	Web         func(*web.Options)
	Registry    func(*registry.Options)
	// Mux adds more handlers to the server's mux.
	Mux func(s *Stack, mux *http.ServeMux)
	// TLS serves HTTPS (with httptest's self-signed certificate; clients
	// use Server.Client()).
	TLS bool
	// Token is the SoftHSM2 token to use; nil makes one. A test that also
	// needs another token (testpki's) makes both first: SoftHSM2 sees
	// only the tokens that exist when it is first loaded.
	Token *softhsmtest.Token
	// OAuth serves the CSC API's OAuth 2.0 authorisation server
	// (/csc/v2/oauth2/...) and its consent page (/sign/consent/{id}).
	OAuth bool
	// OAuthOptions tunes it.
	OAuthOptions func(*oauth.Options)
}

// Stack is one service's worth of real parts behind one loopback server.
type Stack struct {
	T        testing.TB
	Ctx      context.Context
	Dir      string
	Token    *softhsmtest.Token
	DB       *sqlite.DB
	Keys     *keystore.HSM
	Outbox   *sms.Outbox
	CA       *ca.Authority
	Registry *registry.Service
	Portals  *portal.Registry
	Core     *signer.Core
	Tx       *transaction.Service
	CSC      *csc.Service
	Web      *web.Handler
	OAuth    *oauth.Server // with Options.OAuth
	Audit    *audit.Log
	Signing  *signing.Service // every signature's way to a key
	Metrics  *prometheus.Registry
	Server   *httptest.Server
	OTPKey   []byte
}

// New builds a Stack; everything is closed when the test ends.
func New(t testing.TB, opt Options) *Stack {
	t.Helper()
	s := &Stack{T: t, Ctx: context.Background(), Dir: t.TempDir(), Token: opt.Token, Metrics: prometheus.NewRegistry(),
		OTPKey: []byte("stack-test-otp-key-0123456789abcdef-0123456789")}
	if s.Token == nil {
		s.Token = softhsmtest.New(t)
	}
	var handler atomic.Pointer[http.Handler]
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	if opt.TLS {
		s.Server.StartTLS()
	} else {
		s.Server.Start()
	}
	t.Cleanup(s.Server.Close)

	var err error
	if s.DB, err = sqlite.Open(s.Ctx, filepath.Join(s.Dir, "firma.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DB.Close() })
	// As firmad does by default (audit.journal).
	if err := s.DB.JournalAudit(s.Ctx); err != nil {
		t.Fatal(err)
	}
	if s.Keys, err = keystore.Open(s.Ctx, keystore.Config{Module: s.Token.Module, TokenLabel: s.Token.Label, PIN: s.Token.PIN}, s.DB, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Keys.Close() })
	if s.Outbox, err = sms.NewOutbox(s.DB, sms.OutboxOptions{}); err != nil {
		t.Fatal(err)
	}
	ccfg := ca.Config{BaseURL: s.Server.URL, Organization: "Firma Test"}
	if opt.CA != nil {
		opt.CA(&ccfg)
	}
	if s.CA, err = ca.New(ccfg, s.Keys, s.DB, nil, nil, s.Metrics); err != nil {
		t.Fatal(err)
	}
	ropt := registry.Options{SMS: s.Outbox, Revoker: ca.CitizenRevoker{CA: s.CA},
		// Cheap hashing: the tests check behaviour, not cost.
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}}
	if opt.Registry != nil {
		opt.Registry(&ropt)
	}
	if s.Registry, err = registry.New(s.DB, ropt); err != nil {
		t.Fatal(err)
	}
	s.CA.SetCitizens(s.Registry)
	if _, err := s.CA.Init(s.Ctx); err != nil {
		t.Fatalf("ca init: %v", err)
	}
	s.Portals = portal.New(s.DB, portal.Options{})
	s.Core = signer.New(s.Keys, signer.Config{VerifyECDSA: true, Registerer: s.Metrics})

	if s.Audit, err = audit.Open(s.Ctx, s.DB, audit.Options{Node: "stack-test"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Audit.Close() })
	if s.Signing, err = signing.New(signing.Options{Keys: s.Keys, Core: s.Core, CA: s.CA, Citizens: s.Registry, Auditor: s.Audit}); err != nil {
		t.Fatal(err)
	}
	topt := transaction.Options{Store: s.DB, Portals: s.Portals, Citizens: s.Registry, Certificates: s.CA, Signing: s.Signing,
		SMS: s.Outbox, OTPKey: s.OTPKey, BaseURL: s.Server.URL, Registerer: s.Metrics}
	if opt.Transaction != nil {
		opt.Transaction(&topt)
	}
	if s.Tx, err = transaction.New(topt); err != nil {
		t.Fatal(err)
	}
	// The signing workers stop before the store, keystore and audit log
	// they use are closed (cleanups run last added first).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Tx.Stop(ctx)
	})
	hasher, err := policy.NewOTPHasher(s.OTPKey)
	if err != nil {
		t.Fatal(err)
	}
	copt := csc.Options{Store: s.DB, Certificates: s.CA, Keys: s.Keys, Signing: s.Signing, Citizens: s.Registry, SMS: s.Outbox,
		OTP: hasher, Registerer: s.Metrics}
	if opt.OAuth {
		copt.OAuth2URL = s.Server.URL + cschttp.Prefix[:len(cschttp.Prefix)-1]
	}
	if opt.CSC != nil {
		opt.CSC(&copt)
	}
	if s.CSC, err = csc.New(copt); err != nil {
		t.Fatal(err)
	}
	// The confirmation after signing stays 1 s, not 6: every browser
	// approval in the suite waits it out on the way to the portal.
	wopt := web.Options{Transactions: s.Tx, BaseURL: s.Server.URL, Registerer: s.Metrics,
		Citizens: s.Registry, Audit: s.Audit, Portals: s.DB, Sessions: s.DB, ConfirmFor: time.Second}
	if opt.OAuth {
		oopt := oauth.Options{Store: s.DB, Clients: s.DB, Passwords: s.Registry, CSC: s.CSC, ConsentURL: s.Server.URL + web.ConsentPath}
		if opt.OAuthOptions != nil {
			opt.OAuthOptions(&oopt)
		}
		if s.OAuth, err = oauth.New(oopt); err != nil {
			t.Fatal(err)
		}
		wopt.Consents = s.OAuth
	}
	if opt.Web != nil {
		opt.Web(&wopt)
	}
	if s.Web, err = web.New(wopt); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	portalhttp.NewHandler(s.Tx, s.Portals, nil, 0).Register(mux)
	s.Web.Register(mux)
	cschttp.Register(mux, s.CSC, s.Portals, nil)
	if s.OAuth != nil {
		cschttp.RegisterOAuth(mux, s.CSC, s.OAuth, nil)
	}
	pkihttp.Register(mux, s.CA, nil)
	if opt.Mux != nil {
		opt.Mux(s, mux)
	}
	var h http.Handler = mux
	if tt, ok := t.(*testing.T); ok {
		// Every API answer a test receives is checked against the OpenAPI
		// document; benchmarks are served bare, to measure the service.
		h = openapitest.Handler(tt, h, "/api/", "/csc/", "/v1/", "/fire-signature/", "/crl/", "/ca/", "/ocsp", "/tsa")
	}
	handler.Store(&h)
	return s
}

// DNI makes a valid DNI from a number below 10^8.
func DNI(n int) string {
	return fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
}

// Mobile is the test mobile number of a citizen.
func Mobile(id string) string { return "+34600" + id[2:8] }

var registrar = registry.Staff{Name: "registrar-test", Role: policy.Registrar}

// Advanced registers citizen n in person (advanced level) with Password.
func (s *Stack) Advanced(n int, given, surnames string) string {
	s.T.Helper()
	id := DNI(n)
	conf, err := s.Registry.RegisterInPerson(s.Ctx, registrar, registry.Person{ID: id, GivenName: given, Surnames: surnames,
		Mobile: Mobile(id), Email: fmt.Sprintf("c%d@example.es", n)})
	if err != nil {
		s.T.Fatalf("register %s: %v", id, err)
	}
	if err := s.Registry.SetPassword(s.Ctx, id, conf.ActivationCode, Password); err != nil {
		s.T.Fatalf("set password %s: %v", id, err)
	}
	return id
}

// Portal registers a portal with an API key and the given redirect URLs.
func (s *Stack) Portal(name string, redirects ...string) (*store.Portal, string) {
	s.T.Helper()
	c, err := s.Portals.Create(s.Ctx, portal.Spec{Name: name, RedirectURLs: redirects, IssueAPIKey: true})
	if err != nil {
		s.T.Fatalf("create portal: %v", err)
	}
	return c.Portal, c.APIKey
}

var otpRE = regexp.MustCompile(`Cl@ve Firma: (\d{6}) `)

// LastOTP reads the newest code sent to the citizen from the SMS outbox,
// as an operator (or the load generator) does; it also returns the text.
func (s *Stack) LastOTP(citizen string) (string, string) {
	s.T.Helper()
	msgs, err := s.Outbox.Messages(s.Ctx, Mobile(citizen), 1)
	if err != nil || len(msgs) == 0 {
		s.T.Fatalf("no SMS for %s: %v", citizen, err)
	}
	m := otpRE.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		s.T.Fatalf("no code in SMS %q", msgs[0].Text)
	}
	return m[1], msgs[0].Text
}

// SMSCount is how many messages the citizen has received.
func (s *Stack) SMSCount(citizen string) int {
	s.T.Helper()
	msgs, err := s.Outbox.Messages(s.Ctx, Mobile(citizen), 1000)
	if err != nil {
		s.T.Fatal(err)
	}
	return len(msgs)
}

// Certificate makes sure the citizen has a certificate and returns it.
func (s *Stack) Certificate(citizen string) *ca.Certificate {
	s.T.Helper()
	c, err := s.CA.EnsureCertificate(s.Ctx, citizen)
	if err != nil {
		s.T.Fatalf("certificate for %s: %v", citizen, err)
	}
	return c
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RefuseAudit makes the audit store refuse appends, as a full disk or a
// broken database would, and waits until the audit log does (records
// pass through the journal, which refuses once its next move into the
// tables fails). The returned func repairs the store and waits until
// appends pass again.
func (s *Stack) RefuseAudit(t testing.TB) func() {
	t.Helper()
	if _, err := s.DB.SQL().ExecContext(s.Ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
		BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	s.waitAudit(t, false)
	return func() {
		t.Helper()
		if _, err := s.DB.SQL().ExecContext(s.Ctx, `DROP TRIGGER refuse_audit`); err != nil {
			t.Fatal(err)
		}
		s.waitAudit(t, true)
	}
}

// waitAudit appends probe records until appends pass (ok) or fail.
func (s *Stack) waitAudit(t testing.TB, ok bool) {
	t.Helper()
	for try := 0; try < 500; try++ {
		err := s.Audit.Append(s.Ctx, &audit.Record{Event: audit.AuditRead, Outcome: audit.Success,
			Actor: audit.Actor{Role: audit.RoleSystem, ID: "audit-probe"}})
		if (err == nil) == ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("audit appends still %s after 5 s", map[bool]string{true: "refused", false: "accepted"}[ok])
}

// WaitEnded polls the transaction (signed off the approving request, by
// the service's workers) until it is in a final state, and returns it. It
// fails the test after a minute.
func (s *Stack) WaitEnded(id string) *transaction.View {
	s.T.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := s.Tx.View(s.Ctx, id)
		if err != nil {
			s.T.Fatalf("transaction %s: %v", id, err)
		}
		if v.State.Final() {
			return v
		}
		if time.Now().After(deadline) {
			s.T.Fatalf("transaction %s still %s after a minute", id, v.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
