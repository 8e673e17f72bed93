package transaction_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/testdb"
	"github.com/firma-cloud/firma/transaction"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	testdb.Cleanup()
	os.Exit(code)
}

// clock is a test clock the service reads; it starts at the real time so
// that the CA's certificates (issued on real time) are valid.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a whole signing service on real parts: a fresh SoftHSM2 token, a
// fresh database (SQLite unless FIRMA_TEST_STORE says postgres, or the
// backend newEnvWith was given), the citizen registry, the CA, the signing
// core and service, the audit log, the portal registry and the SMS outbox.
type env struct {
	t       testing.TB
	ctx     context.Context
	dir     string
	tok     *softhsmtest.Token
	clock   *clock
	mut     func(*transaction.Options)
	tdb     *testdb.DB
	db      store.Store
	ks      *keystore.HSM
	reg     *registry.Service
	ca      *ca.Authority
	portals *portal.Registry
	svc     *transaction.Service
	audit   *audit.Log
	signing *signing.Service
	otpKey  []byte
}

const password = "Correct-Horse-Battery-7"

var registrar = registry.Staff{Name: "registrar-test", Role: policy.Registrar}

func newEnv(t testing.TB, mut func(*transaction.Options)) *env {
	t.Helper()
	return newEnvOn(t, softhsmtest.New(t), mut)
}

// newEnvOn is newEnv on a token made earlier: SoftHSM2 sees only the
// tokens that exist when the process first loads it.
func newEnvOn(t testing.TB, tok *softhsmtest.Token, mut func(*transaction.Options)) *env {
	t.Helper()
	return newEnvWith(t, testdb.Default(t), tok, mut)
}

// newEnvWith is newEnvOn on the given store backend.
func newEnvWith(t testing.TB, b testdb.Backend, tok *softhsmtest.Token, mut func(*transaction.Options)) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), dir: t.TempDir(), tok: tok, clock: &clock{t: time.Now()}, mut: mut,
		tdb: b.New(t), otpKey: []byte("0123456789abcdef0123456789abcdef-test-otp-key")}
	e.open()
	if _, err := e.ca.Init(e.ctx); err != nil {
		t.Fatalf("ca init: %v", err)
	}
	t.Cleanup(e.close)
	return e
}

// open builds every part on the token and database, as firmad does at
// start-up.
func (e *env) open() {
	t := e.t
	var err error
	e.db = e.tdb.Open(t)
	if e.ks, err = keystore.Open(e.ctx, keystore.Config{Module: e.tok.Module, TokenLabel: e.tok.Label, PIN: e.tok.PIN}, e.db, nil); err != nil {
		t.Fatal(err)
	}
	outbox, err := sms.NewOutbox(e.db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.ca, err = ca.New(ca.Config{BaseURL: "http://127.0.0.1:1", Organization: "Firma Test"}, e.ks, e.db, nil, nil, prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	if err := e.ca.Load(e.ctx); err != nil && !strings.Contains(err.Error(), "not initialised") {
		t.Fatalf("ca load: %v", err)
	}
	// Video-call registration needs service hours: a Monday at 10:00 in Madrid.
	madrid, _ := time.LoadLocation("Europe/Madrid")
	// It moves with the test clock, so that waiting out a delay after a
	// wrong password is e.clock.Add.
	regNow, start := time.Date(2026, 11, 23, 10, 0, 0, 0, madrid), e.clock.Now()
	if e.reg, err = registry.New(e.db, registry.Options{SMS: outbox, Revoker: ca.CitizenRevoker{CA: e.ca},
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}, Clock: func() time.Time { return regNow.Add(e.clock.Now().Sub(start)) }}); err != nil {
		t.Fatal(err)
	}
	e.ca.SetCitizens(e.reg)
	e.portals = portal.New(e.db, portal.Options{Clock: e.clock.Now})
	if e.audit, err = audit.Open(e.ctx, e.db, audit.Options{Node: "test-node"}); err != nil {
		t.Fatal(err)
	}
	core := signer.New(e.ks, signer.Config{VerifyECDSA: true})
	if e.signing, err = signing.New(signing.Options{Keys: e.ks, Core: core, CA: e.ca, Citizens: e.reg, Auditor: e.audit}); err != nil {
		t.Fatal(err)
	}
	opt := transaction.Options{Store: e.db, Portals: e.portals, Citizens: e.reg, Certificates: e.ca, Signing: e.signing,
		SMS: outbox, OTPKey: e.otpKey, BaseURL: "https://firma.example.es/", Clock: e.clock.Now, Registerer: prometheus.NewRegistry(),
		CallbackBackoff: 50 * time.Millisecond}
	if e.mut != nil {
		e.mut(&opt)
	}
	if e.svc, err = transaction.New(opt); err != nil {
		t.Fatal(err)
	}
}

func (e *env) close() {
	if e.svc != nil {
		// The workers first: they use everything below.
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		e.svc.Stop(ctx)
		cancel()
	}
	if e.audit != nil {
		e.audit.Close()
		e.audit = nil
	}
	if e.ks != nil {
		e.ks.Close()
		e.ks = nil
	}
	if e.db != nil {
		e.db.Close()
		e.db = nil
	}
}

// restart closes the store, keystore and service and builds them again on
// the same token and database, as a restart of firmad does.
func (e *env) restart() {
	e.close()
	e.open()
}

// dni makes a valid DNI from an 8-digit number.
func dni(n int) string {
	return fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
}

func mobile(id string) string { return "+34600" + id[2:8] }

// advanced registers a citizen in person (advanced level) with a password.
func (e *env) advanced(n int) string {
	e.t.Helper()
	id := dni(n)
	conf, err := e.reg.RegisterInPerson(e.ctx, registrar, registry.Person{ID: id, GivenName: "Lucía", Surnames: "García Pérez",
		Mobile: mobile(id), Email: fmt.Sprintf("c%d@example.es", n)})
	if err != nil {
		e.t.Fatalf("register %s: %v", id, err)
	}
	if err := e.reg.SetPassword(e.ctx, id, conf.ActivationCode, password); err != nil {
		e.t.Fatalf("set password %s: %v", id, err)
	}
	return id
}

// basic registers a citizen by video call (basic level).
func (e *env) basic(n int) string {
	e.t.Helper()
	id := dni(n)
	if _, err := e.reg.RegisterVideoCall(e.ctx, registry.Staff{Name: "agent", Role: policy.VideoAgent}, registry.Person{ID: id,
		GivenName: "Pablo", Surnames: "Ruiz", Mobile: mobile(id), Email: fmt.Sprintf("b%d@example.es", n)}); err != nil {
		e.t.Fatalf("register %s: %v", id, err)
	}
	return id
}

const (
	okURL  = "https://portal.example.es/ok"
	errURL = "https://portal.example.es/error"
)

// portal registers a portal with an API key.
func (e *env) portal(name string, mut func(*portal.Spec)) *store.Portal {
	e.t.Helper()
	s := portal.Spec{Name: name, RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true}
	if mut != nil {
		mut(&s)
	}
	c, err := e.portals.Create(e.ctx, s)
	if err != nil {
		e.t.Fatalf("create portal: %v", err)
	}
	return c.Portal
}

func (e *env) create(p *store.Portal, citizen string, docs ...transaction.DocumentInput) *transaction.Created {
	e.t.Helper()
	c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Documents: docs, OKURL: okURL, ErrorURL: errURL})
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return c
}

var otpRE = regexp.MustCompile(`Cl@ve Firma: (\d{6}) `)

// lastOTP reads the newest code sent to the citizen from the SMS outbox.
func (e *env) lastOTP(citizen string) (string, string) {
	e.t.Helper()
	msgs, err := e.db.SMSes(e.ctx, mobile(citizen), 1)
	if err != nil || len(msgs) == 0 {
		e.t.Fatalf("no SMS for %s: %v", citizen, err)
	}
	m := otpRE.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		e.t.Fatalf("no code in SMS %q", msgs[0].Text)
	}
	return m[1], msgs[0].Text
}

// login signs the citizen in and sends the code; it returns the session
// and the code.
func (e *env) login(id, citizen string) (string, string) {
	e.t.Helper()
	sess, err := e.svc.Authenticate(e.ctx, id, citizen, password)
	if err != nil {
		e.t.Fatalf("authenticate: %v", err)
	}
	if _, err := e.svc.SendOTP(e.ctx, id, sess.Token); err != nil {
		e.t.Fatalf("send otp: %v", err)
	}
	code, _ := e.lastOTP(citizen)
	return sess.Token, code
}

// approve approves and waits for this process's signing workers to be
// through with the transaction, as Approve did when it signed inline: it
// returns the transaction as they left it, or their error (a transient
// fault handed it back).
func (e *env) approve(id, sess, code string) (*transaction.View, error) {
	e.t.Helper()
	if _, err := e.svc.Approve(e.ctx, id, sess, code); err != nil {
		return nil, err
	}
	if err := e.svc.Wait(e.ctx, id); err != nil {
		return nil, err
	}
	return e.svc.SessionView(e.ctx, id, sess)
}

// wantCode fails unless err carries the code.
func wantCode(t *testing.T, err error, code transaction.Code) {
	t.Helper()
	if got := transaction.CodeOf(err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
}

// writePEM writes DER certificates as one PEM file.
func writePEM(t *testing.T, path string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
