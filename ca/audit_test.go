package ca_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
)

// audited gives e a CA that writes to a real audit log on e's store.
func (e *env) audited() *audit.Log {
	e.t.Helper()
	l, err := audit.Open(e.ctx, e.db, audit.Options{Node: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Close() })
	cfg := e.cfg
	cfg.Audit = l
	a, err := ca.New(cfg, e.ks, e.db, e.reg, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.use(a)
	return l
}

func records(t *testing.T, e *env, l *audit.Log, f audit.Filter) []*audit.Record {
	t.Helper()
	f.Limit = audit.MaxPage
	p, err := l.Query(e.ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return p.Records
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAuditTrail(t *testing.T) {
	e := newEnv(t, nil)
	l := e.audited()
	res := e.init()
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(ca.WithActor(e.ctx, audit.Actor{Role: audit.RoleAdmin, ID: "op-ana"}), "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	root, issuing := e.chain()
	e.ocspStatus(root, issuing, e.file("citizen.pem", "CERTIFICATE", c.DER))
	if _, err := e.ca.Revoke(e.ctx, c.ID, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	issuingKey, err := e.ks.Keys(e.ctx, ca.OwnerIssuing, "", 1)
	if err != nil || len(issuingKey) != 1 {
		t.Fatal(err)
	}

	// The citizen's key: made, certified, revoked, destroyed, in order.
	var got []audit.Event
	for _, r := range records(t, e, l, audit.Filter{KeyID: c.KeyID}) {
		got = append(got, r.Event)
		if r.Citizen != "12345678Z" || r.Outcome != audit.Success {
			t.Errorf("%s: citizen %q outcome %s", r.Event, r.Citizen, r.Outcome)
		}
		if r.Event == audit.CertificateIssued {
			if r.Actor.ID != "op-ana" || r.Details["serial"] != "0x"+c.Serial || r.Documents[0].Digest != sha256Hex(c.DER) {
				t.Errorf("issued record %+v", r)
			}
		}
		if r.Event == audit.CertificateRevoked && r.Details["reason"] != "keyCompromise" {
			t.Errorf("revoked record %+v", r)
		}
	}
	want := []audit.Event{audit.KeyGenerated, audit.CertificateIssued, audit.CertificateRevoked, audit.KeyDestroyRequested, audit.KeyDestroyed}
	if len(got) != len(want) {
		t.Fatalf("citizen key records %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("citizen key records %v, want %v", got, want)
		}
	}

	// The key's generation was asked for, and recorded, before it was made
	// (its ID unknown then): the intent precedes the result, linked.
	gen := records(t, e, l, audit.Filter{Citizen: "12345678Z", Events: []audit.Event{audit.KeyGenerateRequested, audit.KeyGenerated}})
	if len(gen) != 2 || gen[0].Event != audit.KeyGenerateRequested || gen[0].KeyID != audit.NoKey || gen[1].KeyID != c.KeyID ||
		gen[0].Seq >= gen[1].Seq || gen[0].Details[audit.DetailKeyChange] != gen[1].Details[audit.DetailKeyChange] {
		t.Errorf("citizen key generation records %+v, want its intent then its result", gen)
	}

	// Every signature by the issuing CA key is a key.used record with the
	// digest of what it signed: the OCSP responder and citizen
	// certificates and each CRL.
	purposes := map[string]int{}
	for _, r := range records(t, e, l, audit.Filter{KeyID: issuingKey[0].ID, Events: []audit.Event{audit.KeyUsed}}) {
		purposes[r.Details["purpose"]]++
		if len(r.Documents) != 1 || r.Documents[0].Hash != "sha-256" {
			t.Errorf("key.used without the document digest: %+v", r)
		}
	}
	if purposes["certificate"] != 2 || purposes["crl"] < 2 {
		t.Errorf("issuing key uses by purpose %v, want 2 certificates and a CRL per publication", purposes)
	}
	crl, err := e.ca.CRL(e.ctx, "issuing")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range records(t, e, l, audit.Filter{KeyID: issuingKey[0].ID, Events: []audit.Event{audit.KeyUsed}}) {
		found = found || r.Documents[0].Digest == sha256Hex(crl.DER)
	}
	if !found {
		t.Errorf("the published CRL's digest is not in the audit log")
	}
	ocspKeys, err := e.ks.Keys(e.ctx, ca.OwnerOCSP, "", 10)
	if err != nil || len(ocspKeys) != 1 {
		t.Fatalf("ocsp keys %v %v", ocspKeys, err)
	}
	uses := records(t, e, l, audit.Filter{KeyID: ocspKeys[0].ID, Events: []audit.Event{audit.KeyUsed}})
	if len(uses) != 1 || uses[0].Details["purpose"] != "ocsp" || uses[0].Details["status"] != "good" || uses[0].Details["serial"] != "0x"+c.Serial {
		t.Errorf("ocsp responder key uses %+v, want the one good response", uses)
	}
	_ = res
}

// With the audit log down nothing leaves the CA: no certificate, no key
// left behind, no revocation, no OCSP answer signed.
func TestAuditFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	e.advanced("23456789D", "Ana", "López")
	live, err := e.ca.EnsureCertificate(e.ctx, "23456789D")
	if err != nil {
		t.Fatal(err)
	}
	l := e.audited()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := e.ca.EnsureCertificate(e.ctx, "12345678Z"); !errors.Is(err, ca.ErrAuditUnavailable) {
		t.Fatalf("issue with the audit log down = %v, want ErrAuditUnavailable", err)
	}
	if list, _ := e.ca.Certificates(e.ctx, ca.ListOptions{Citizen: "12345678Z"}); len(list) != 0 {
		t.Errorf("%d certificates stored without an audit record", len(list))
	}
	keys, err := e.ks.Keys(e.ctx, "12345678Z", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	// Its intent unrecorded, no key was made at all (not made, then
	// destroyed).
	if len(keys) != 0 {
		t.Errorf("%d keys made for a refused issue: %+v", len(keys), keys[0])
	}

	if _, err := e.ca.Revoke(e.ctx, live.ID, ca.ReasonKeyCompromise); !errors.Is(err, ca.ErrAuditUnavailable) {
		t.Fatalf("revoke with the audit log down = %v, want ErrAuditUnavailable", err)
	}
	if c, _ := e.ca.Certificate(e.ctx, live.ID); c.Status != "valid" {
		t.Errorf("revoked without an audit record: %s", c.Status)
	}
	if _, _, err := sign(t, e.ks, live.KeyID); err != nil {
		t.Errorf("key destroyed without an audit record: %v", err)
	}

	req, err := ocspRequest(live, e.ca.Issuing())
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.ca.RespondOCSP(e.ctx, req)
	if !errors.Is(err, ca.ErrAuditUnavailable) || res.Status != "error" {
		t.Errorf("OCSP with the audit log down = %s, %v; want an internalError response", res.Status, err)
	}
}
