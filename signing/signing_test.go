package signing_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// env is the signing service on real parts: a SoftHSM2 token, an SQLite
// store on a temporary directory, the CA, the citizen registry and the
// audit log.
type env struct {
	t    *testing.T
	ctx  context.Context
	db   *sqlite.DB
	ks   *keystore.HSM
	ca   *ca.Authority
	reg  *registry.Service
	log  *audit.Log
	core *signer.Core
	svc  *signing.Service
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvMetrics(t, nil) }

// newEnvMetrics is newEnv with the keystore's and the core's metrics on
// reg (nil: none).
func newEnvMetrics(t *testing.T, reg prometheus.Registerer) *env {
	t.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(t)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Registerer: reg}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ca.New(ca.Config{BaseURL: "http://127.0.0.1:1", Organization: "Firma Test"}, ks, db, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// Video-call registration needs service hours: a Monday at 10:00 in Madrid.
	madrid, _ := time.LoadLocation("Europe/Madrid")
	regNow := time.Date(2026, 11, 23, 10, 0, 0, 0, madrid)
	citizens, err := registry.New(db, registry.Options{SMS: outbox, Revoker: ca.CitizenRevoker{CA: auth},
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}, Clock: func() time.Time { return regNow }})
	if err != nil {
		t.Fatal(err)
	}
	auth.SetCitizens(citizens)
	if _, err := auth.Init(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, db, audit.Options{Node: "signing-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	core := signer.New(ks, signer.Config{VerifyECDSA: true, Registerer: reg})
	svc, err := signing.New(signing.Options{Keys: ks, Core: core, CA: auth, Citizens: citizens, Auditor: l})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, db: db, ks: ks, ca: auth, reg: citizens, log: l, core: core, svc: svc}
}

func dni(n int) string { return fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23]) }

func (e *env) advanced(n int) string {
	e.t.Helper()
	id := dni(n)
	if _, err := e.reg.RegisterInPerson(e.ctx, registry.Staff{Name: "registrar", Role: policy.Registrar},
		registry.Person{ID: id, GivenName: "Lucía", Surnames: "García", Mobile: fmt.Sprintf("+34600%06d", n%1000000), Email: fmt.Sprintf("c%d@example.es", n)}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) basic(n int) string {
	e.t.Helper()
	id := dni(n)
	if _, err := e.reg.RegisterVideoCall(e.ctx, registry.Staff{Name: "agent", Role: policy.VideoAgent},
		registry.Person{ID: id, GivenName: "Pablo", Surnames: "Ruiz", Mobile: fmt.Sprintf("+34600%06d", n%1000000), Email: fmt.Sprintf("b%d@example.es", n)}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// refuseAudit makes the audit store refuse every append from now on, as a
// full disk or a broken database would; the returned func repairs it.
func (e *env) refuseAudit() func() {
	e.t.Helper()
	if _, err := e.db.SQL().ExecContext(e.ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
		BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		if _, err := e.db.SQL().ExecContext(e.ctx, `DROP TRIGGER refuse_audit`); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) records(keyID string) []*audit.Record {
	e.t.Helper()
	page, err := e.log.Query(e.ctx, audit.Filter{KeyID: keyID, Events: []audit.Event{audit.KeyActivated, audit.KeyUsed}})
	if err != nil {
		e.t.Fatal(err)
	}
	return page.Records
}

// consent is single-use evidence as a way in keeps it: taken once under a
// lock (the store's conditional update in real ways in), given back on
// Restore.
type consent struct {
	mu       sync.Mutex
	taken    bool
	consumed int
	restored int
}

var errUsed = fmt.Errorf("consent: %w", signing.ErrEvidenceUsed)

func (c *consent) Kind() string { return "test-consent" }
func (c *consent) Ref() string  { return "consent-1" }
func (c *consent) Consume(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken {
		return errUsed
	}
	c.taken = true
	c.consumed++
	return nil
}
func (c *consent) Restore(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.taken = false
	c.restored++
	return nil
}

func (c *consent) available() bool { c.mu.Lock(); defer c.mu.Unlock(); return !c.taken }

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func citizenRequest(citizen string, ev signing.Evidence, docs ...[]byte) signing.Request {
	r := signing.Request{Purpose: signing.PurposeTransaction, Actor: audit.Actor{Role: audit.RoleCitizen, ID: citizen},
		Citizen: citizen, Portal: "portal-1", RequestID: "tx-1", Evidence: ev, Details: map[string]string{"transaction": "tx-1"}}
	for _, d := range docs {
		r.Documents = append(r.Documents, audit.Digest(crypto.SHA256, d))
	}
	return r
}

func TestNew(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		opt  signing.Options
	}{
		{"no auditor", signing.Options{Keys: e.ks, Core: e.core, CA: e.ca, Citizens: e.reg}},
		{"no keystore", signing.Options{Core: e.core, Auditor: e.log}},
		{"no core", signing.Options{Keys: e.ks, Auditor: e.log}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if s, err := signing.New(c.opt); err == nil || s != nil {
				t.Fatalf("New accepted %s", c.name)
			}
		})
	}
}

// TestAuthorise covers the decisions: who may not sign, which
// certificates and keys cannot, and evidence that does not fit.
func TestAuthorise(t *testing.T) {
	e := newEnv(t)
	ok := e.advanced(10000001)
	weak := e.basic(10000002)
	revoked := e.advanced(10000003)
	destroyed := e.advanced(10000004)
	rc, err := e.ca.EnsureCertificate(e.ctx, revoked)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ca.Revoke(e.ctx, rc.ID, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	dc, err := e.ca.EnsureCertificate(e.ctx, destroyed)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ks.Destroy(e.ctx, dc.KeyID); err != nil {
		t.Fatal(err)
	}
	service, err := e.ks.Generate(e.ctx, "system:test", keystore.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	operator := audit.Actor{Role: audit.RoleAdmin, ID: "ops"}
	d := digest("resolución")
	for _, c := range []struct {
		name     string
		req      func(ev signing.Evidence) signing.Request
		standing bool // the request carries Standing instead of consent
		want     []error
	}{
		{"advanced citizen", func(ev signing.Evidence) signing.Request { return citizenRequest(ok, ev, d) }, false, nil},
		{"basic citizen", func(ev signing.Evidence) signing.Request { return citizenRequest(weak, ev, d) }, false,
			[]error{signing.ErrRefused, ca.ErrNotAdvanced}},
		{"unknown citizen", func(ev signing.Evidence) signing.Request { return citizenRequest(dni(10000009), ev, d) }, false,
			[]error{signing.ErrRefused, ca.ErrUnknownCitizen}},
		{"revoked certificate", func(ev signing.Evidence) signing.Request {
			r := citizenRequest(revoked, ev, d)
			r.Purpose, r.Certificate = signing.PurposeCSC, rc.ID
			return r
		}, false, []error{signing.ErrCertificateRevoked}},
		{"destroyed key", func(ev signing.Evidence) signing.Request {
			r := citizenRequest(destroyed, ev, d)
			r.Purpose, r.Certificate = signing.PurposeCSC, dc.ID
			return r
		}, false, []error{keystore.ErrKeyDestroyed}},
		{"another citizen's certificate", func(ev signing.Evidence) signing.Request {
			r := citizenRequest(ok, ev, d)
			r.Purpose, r.Certificate = signing.PurposeCSC, dc.ID
			return r
		}, false, []error{ca.ErrNotFound}},
		{"citizen key on standing", func(ev signing.Evidence) signing.Request {
			return citizenRequest(ok, signing.OperatorCall("ops"), d)
		}, true, []error{signing.ErrEvidence}},
		{"citizen key without evidence", func(ev signing.Evidence) signing.Request { return citizenRequest(ok, nil, d) }, true,
			[]error{signing.ErrEvidence}},
		{"operator with consent", func(ev signing.Evidence) signing.Request {
			return signing.Request{Purpose: signing.PurposeOperator, Actor: operator, KeyID: service.ID, Evidence: ev}
		}, false, []error{signing.ErrEvidence}},
		{"operator call", func(signing.Evidence) signing.Request {
			return signing.Request{Purpose: signing.PurposeOperator, Actor: operator, KeyID: service.ID, Evidence: signing.OperatorCall("ops")}
		}, true, nil},
		{"operator without actor", func(signing.Evidence) signing.Request {
			return signing.Request{Purpose: signing.PurposeOperator, KeyID: service.ID, Evidence: signing.OperatorCall("ops")}
		}, true, []error{signing.ErrRequest}},
		{"unknown purpose", func(signing.Evidence) signing.Request {
			return signing.Request{Purpose: "marketing", Actor: operator, KeyID: service.ID, Evidence: signing.OperatorCall("ops")}
		}, true, []error{signing.ErrRequest}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := &consent{}
			g, err := e.svc.Authorise(e.ctx, c.req(ev))
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Fatalf("Authorise: %v, want %v", err, w)
				}
			}
			if len(c.want) > 0 {
				if g != nil {
					t.Fatal("a refused request got a grant")
				}
				if ev.consumed != 0 {
					t.Fatal("a refused request consumed the evidence")
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorise: %v", err)
			}
			if !c.standing && (ev.consumed != 1 || ev.available()) {
				t.Fatalf("evidence consumed %d times, available %v", ev.consumed, ev.available())
			}
			recs := e.records(g.Key().ID)
			last := recs[len(recs)-1]
			if last.Event != audit.KeyActivated || last.Details[audit.DetailActivation] != g.Activation() || len(g.Activation()) != 32 {
				t.Fatalf("last record %+v, want key.activated %s", last, g.Activation())
			}
		})
	}
}

// TestReplayedEvidence checks consent is single use: the second request
// presenting it is refused with the evidence's own error, and the refusal
// is recorded as a denied key.activated.
func TestReplayedEvidence(t *testing.T) {
	e := newEnv(t)
	c := e.advanced(10000011)
	ev := &consent{}
	g, err := e.svc.Authorise(e.ctx, citizenRequest(c, ev, digest("a")))
	if err != nil {
		t.Fatal(err)
	}
	before := len(e.records(g.Key().ID))
	if _, err := e.svc.Authorise(e.ctx, citizenRequest(c, ev, digest("a"))); !errors.Is(err, errUsed) {
		t.Fatalf("replayed evidence: %v, want %v", err, errUsed)
	}
	recs := e.records(g.Key().ID)
	if len(recs) != before+1 {
		t.Fatalf("%d records after a replay, %d before", len(recs), before)
	}
	if last := recs[len(recs)-1]; last.Event != audit.KeyActivated || last.Outcome != audit.Denied || last.Reason != "evidence already used" {
		t.Fatalf("replay recorded as %+v", last)
	}
}

// TestAuditRefusing checks that with the audit log refusing appends
// nothing is granted and the evidence is given back, so the citizen's
// consent still stands once the log works again.
func TestAuditRefusing(t *testing.T) {
	e := newEnv(t)
	c := e.advanced(10000021)
	if _, err := e.ca.EnsureCertificate(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	service, err := e.ks.Generate(e.ctx, "system:test", keystore.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	repair := e.refuseAudit()
	for _, r := range []struct {
		name string
		ev   *consent
		req  signing.Request
	}{
		{"citizen", &consent{}, citizenRequest(c, nil, digest("x"))},
		{"operator", nil, signing.Request{Purpose: signing.PurposeOperator, Actor: audit.Actor{Role: audit.RoleAdmin, ID: "ops"},
			KeyID: service.ID, Evidence: signing.OperatorCall("ops")}},
	} {
		t.Run(r.name, func(t *testing.T) {
			req := r.req
			if r.ev != nil {
				req.Evidence = r.ev
			}
			g, err := e.svc.Authorise(e.ctx, req)
			if !errors.Is(err, signing.ErrAuditUnavailable) || g != nil {
				t.Fatalf("Authorise with the audit store down: %v, %v", g, err)
			}
			if r.ev != nil && (r.ev.consumed != 1 || r.ev.restored != 1 || !r.ev.available()) {
				t.Fatalf("evidence consumed %d, restored %d: not given back", r.ev.consumed, r.ev.restored)
			}
		})
	}
	repair()
	ev := &consent{}
	g, err := e.svc.Authorise(e.ctx, citizenRequest(c, ev, digest("x")))
	if err != nil {
		t.Fatalf("Authorise with the audit log back: %v", err)
	}
	if _, err := g.SignDigests(e.ctx, "", crypto.SHA256, [][]byte{digest("x")}); err != nil {
		t.Fatal(err)
	}
	// A key.used that cannot be written is an error the caller must
	// withhold the signatures on.
	e.refuseAudit()
	if err := g.Release(e.ctx, signing.Result{Documents: []audit.Document{audit.Digest(crypto.SHA256, digest("x"))}, Format: "raw"}); !errors.Is(err, signing.ErrAuditUnavailable) {
		t.Fatalf("Release with the audit store down: %v", err)
	}
}

// TestRecords checks the pair of records a signature leaves: key.activated
// before key.used, the same activation ID, the digests, and the details
// the audit metrics label by.
func TestRecords(t *testing.T) {
	e := newEnv(t)
	c := e.advanced(10000031)
	rsaKey, err := e.ks.Generate(e.ctx, "system:test", keystore.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	docs := [][]byte{digest("uno"), digest("dos")}
	for _, tc := range []struct {
		name    string
		req     signing.Request
		scheme  keystore.Scheme
		algo    string
		citizen string
	}{
		{"transaction", citizenRequest(c, &consent{}, docs...), "", "ecdsa-p256", c},
		{"operator pss", signing.Request{Purpose: signing.PurposeOperator, Actor: audit.Actor{Role: audit.RoleAdmin, ID: "ops"}, KeyID: rsaKey.ID,
			Evidence: signing.OperatorCall("ops"), Documents: []audit.Document{audit.Digest(crypto.SHA256, docs[0]), audit.Digest(crypto.SHA256, docs[1])}},
			keystore.PSS, "rsa-pss-2048", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := e.svc.Authorise(e.ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			sigs, err := g.SignDigests(e.ctx, tc.scheme, crypto.SHA256, docs)
			if err != nil || len(sigs) != 2 {
				t.Fatalf("SignDigests: %d, %v", len(sigs), err)
			}
			if err := g.Release(e.ctx, signing.Result{Documents: tc.req.Documents, Format: "raw", Scheme: tc.scheme}); err != nil {
				t.Fatal(err)
			}
			recs := e.records(g.Key().ID)
			if len(recs) < 2 {
				t.Fatalf("%d records", len(recs))
			}
			act, used := recs[len(recs)-2], recs[len(recs)-1]
			if act.Event != audit.KeyActivated || used.Event != audit.KeyUsed || act.Seq >= used.Seq {
				t.Fatalf("records %s #%d, %s #%d: want key.activated before key.used", act.Event, act.Seq, used.Event, used.Seq)
			}
			id := act.Details[audit.DetailActivation]
			if id == "" || used.Details[audit.DetailActivation] != id || id != g.Activation() {
				t.Fatalf("activation %q, key.used says %q", id, used.Details[audit.DetailActivation])
			}
			if len(act.Documents) != 2 || len(used.Documents) != 2 || act.Documents[1] != used.Documents[1] {
				t.Fatalf("documents: activated %v, used %v", act.Documents, used.Documents)
			}
			if used.Details[audit.DetailAlgorithm] != tc.algo || used.Details[audit.DetailFormat] != "raw" || used.Outcome != audit.Success {
				t.Fatalf("key.used details %v outcome %s", used.Details, used.Outcome)
			}
			if act.Citizen != tc.citizen || used.Citizen != tc.citizen || act.Actor != tc.req.Actor || act.Details["evidence"] == "" {
				t.Fatalf("who: activated %+v, used %+v", act, used)
			}
			if tc.req.Purpose == signing.PurposeTransaction && (act.Details["transaction"] != "tx-1" || used.Details["transaction"] != "tx-1") {
				t.Fatalf("request details lost: %v / %v", act.Details, used.Details)
			}
		})
	}

	// The crypto.Signer of a grant signs with the options' scheme, and a
	// failure is a key.used Failure under the same activation.
	g, err := e.svc.Authorise(e.ctx, signing.Request{Purpose: signing.PurposeTSA, Actor: audit.Actor{Role: audit.RoleSystem, ID: "tsa"},
		KeyID: rsaKey.ID, Evidence: signing.TimestampInterval("2026-01-01T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := g.Signer(e.ctx).Sign(nil, docs[0], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(rsaKey.Public.(*rsa.PublicKey), crypto.SHA256, docs[0], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Fatalf("Signer ignored PSS: %v", err)
	}
	if err := g.Release(e.ctx, signing.Result{Failure: "token not built"}); err != nil {
		t.Fatal(err)
	}
	recs := e.records(rsaKey.ID)
	last := recs[len(recs)-1]
	if last.Outcome != audit.Failure || last.Reason != "token not built" || last.Details[audit.DetailActivation] != g.Activation() {
		t.Fatalf("failure record %+v", last)
	}
	// A citizen's grant carries the chain CAdES and PAdES embed.
	cg, err := e.svc.Authorise(e.ctx, citizenRequest(c, &consent{}, docs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if ch := cg.Chain(); len(ch) != 2 || !ch[1].Equal(e.ca.Issuing()) || cg.Certificate() == nil {
		t.Fatalf("chain of %d certificates", len(ch))
	}
	if _, ok := cg.Signer(e.ctx).Public().(*ecdsa.PublicKey); !ok {
		t.Fatal("citizen key is not the ECDSA key of the certificate")
	}
}

// TestGrantBoundToDigests: a grant signs the raw digests its activation
// lists and nothing else, neither another digest nor the same digest under
// another hash.
func TestGrantBoundToDigests(t *testing.T) {
	e := newEnv(t)
	c := e.advanced(10000033)
	if _, err := e.ca.EnsureCertificate(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.Authorise(e.ctx, citizenRequest(c, &consent{}, digest("a"), digest("b")))
	if err != nil {
		t.Fatal(err)
	}
	sha384 := sha512.Sum384([]byte("a"))
	for _, tc := range []struct {
		name    string
		h       crypto.Hash
		digests [][]byte
		ok      bool
	}{
		{"approved", crypto.SHA256, [][]byte{digest("b"), digest("a")}, true},
		{"one of them", crypto.SHA256, [][]byte{digest("a")}, true},
		{"another digest", crypto.SHA256, [][]byte{digest("a"), digest("c")}, false},
		{"another hash", crypto.SHA384, [][]byte{sha384[:]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs, err := g.SignDigests(e.ctx, "", tc.h, tc.digests)
			switch {
			case tc.ok && (err != nil || len(sigs) != len(tc.digests)):
				t.Fatalf("approved digests refused: %v", err)
			case !tc.ok && (!errors.Is(err, signing.ErrNotApproved) || sigs != nil):
				t.Fatalf("got %d signatures, %v; want ErrNotApproved and none", len(sigs), err)
			}
		})
	}
}

// Every signature a grant makes counts in firma_signer_signatures_total,
// by its purpose: digest batches and the builders' crypto.Signer alike,
// so that the count is the keystore's less the service's own signatures
// (the CA's certificate here).
func TestSignaturesCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnvMetrics(t, reg)
	c := e.advanced(10000044)
	if _, err := e.ca.EnsureCertificate(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	keystoreSigns := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() != "firma_keystore_operations_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["op"] == "sign" && labels["outcome"] == "ok" {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	before := keystoreSigns()
	g, err := e.svc.Authorise(e.ctx, citizenRequest(c, &consent{}, digest("a"), digest("b")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SignDigests(e.ctx, "", crypto.SHA256, [][]byte{digest("a"), digest("b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Signer(e.ctx).Sign(nil, digest("a"), crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP firma_signer_signatures_total Signatures made with granted keys, digest batches (Sign) and the CMS, PDF and XML builders' (Signer) alike, by key type, scheme, purpose and outcome. The keystore's sign count also holds the service's own signatures (certificates, CRLs, OCSP, audit checkpoints).
# TYPE firma_signer_signatures_total counter
firma_signer_signatures_total{key_type="ec-p256",outcome="ok",purpose="transaction",scheme="ecdsa"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "firma_signer_signatures_total"); err != nil {
		t.Error(err)
	}
	if got := keystoreSigns() - before; got != 3 {
		t.Errorf("the keystore made %v signatures for the grant, the signer counted 3", got)
	}
}
