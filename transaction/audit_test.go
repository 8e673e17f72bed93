package transaction_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/transaction"
)

// refuseAudit makes the audit store refuse the records when matches
// (an SQL condition on the new audit_records row), as a full disk or a
// broken database would; the returned func repairs it. SQLite only: the
// trigger is SQLite's.
func refuseAudit(t *testing.T, e *env, when string) func() {
	t.Helper()
	db, ok := e.db.(*sqlite.DB)
	if !ok {
		t.Skip("refusing audit appends is done with an SQLite trigger")
	}
	if _, err := db.SQL().ExecContext(e.ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
		WHEN `+when+` BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.SQL().ExecContext(e.ctx, `DROP TRIGGER refuse_audit`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditRecordsEveryStep runs a transaction with one wrong code and
// reads the audit log back: every step is there, the signing as one
// key.activated and a key.used per format with its documents' digests,
// linked by the activation, and no code anywhere.
func TestAuditRecordsEveryStep(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, _ := threeDocs(t)
	c := e.create(p, citizen, docs...)
	sess, code := e.login(c.ID, citizen)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if _, err := e.approve(c.ID, sess, wrong); transaction.CodeOf(err) != transaction.CodeOTPInvalid {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	page, err := e.audit.Query(e.ctx, audit.Filter{Portal: p.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[audit.Event]int{}
	formats := map[string]int{}
	activation := ""
	for _, r := range page.Records {
		count[r.Event]++
		switch r.Event {
		case audit.KeyActivated:
			activation = r.Details[audit.DetailActivation]
			if r.Outcome != audit.Success || r.Citizen != citizen || len(r.Documents) != 3 || r.Details["evidence"] != "transaction-lease" ||
				r.Details["evidence_ref"] != c.ID || count[audit.KeyUsed] > 0 {
				t.Errorf("key.activated %+v", r)
			}
		case audit.KeyUsed:
			if r.Outcome != audit.Success || r.Citizen != citizen || r.KeyID == "" || r.RequestID != c.ID ||
				r.Details[audit.DetailActivation] != activation || r.Details[audit.DetailAlgorithm] != "ecdsa-p256" {
				t.Errorf("key.used %+v", r)
			}
			formats[r.Details[audit.DetailFormat]] += len(r.Documents)
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), code) || strings.Contains(string(b), sess) {
			t.Errorf("record %s holds the OTP or the session", b)
		}
	}
	for ev, n := range map[audit.Event]int{audit.TransactionCreated: 1, audit.OTPSent: 1, audit.OTPFailed: 1, audit.OTPChecked: 1,
		audit.KeyActivated: 1, audit.KeyUsed: 3, audit.TransactionStateChange: 1} {
		if count[ev] != n {
			t.Errorf("%d %s records, want %d (all: %v)", count[ev], ev, n, count)
		}
	}
	if formats["raw"] != 1 || formats["cades"] != 1 || formats["pades"] != 1 {
		t.Errorf("documents per format in key.used: %v", formats)
	}
}

// TestAuditUnavailableKeepsApproval breaks the audit store before the
// approval: nothing is signed, the transaction is approved again (the
// citizen's consent still stands) and a second approval is refused; once
// the log works, the resume loop signs it.
func TestAuditUnavailableKeepsApproval(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	sess, code := e.login(c.ID, citizen)
	repair := refuseAudit(t, e, "1")
	_, err := e.approve(c.ID, sess, code)
	wantCode(t, err, transaction.CodeUnavailable)
	if !strings.Contains(err.Error(), "audit") {
		t.Fatalf("approve with the audit store down: %v", err)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transaction.State != transaction.StateApproved || r.Documents[0].Status != transaction.DocPending || len(r.Documents[0].Signature) != 0 {
		t.Fatalf("after the refused signing: state %s, document %+v", r.Transaction.State, r.Documents[0])
	}
	// The approval is spent: approving again is refused, and signs nothing.
	_, err = e.approve(c.ID, sess, code)
	wantCode(t, err, transaction.CodeAlreadyUsed)

	repair()
	if err := e.svc.Resume(e.ctx); err != nil {
		t.Fatal(err)
	}
	r, err = e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transaction.State != transaction.StateDone || r.Documents[0].Status != transaction.DocSigned || len(r.Documents[0].Signature) == 0 {
		t.Fatalf("after resuming: state %s, document %+v", r.Transaction.State, r.Documents[0])
	}
}

// TestAuditUnavailableWithholdsSignatures lets the signing be authorised
// and then refuses its key.used record: nothing signed may leave without
// its record.
func TestAuditUnavailableWithholdsSignatures(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	sess, code := e.login(c.ID, citizen)
	defer refuseAudit(t, e, "NEW.event = 'key.used' AND NEW.outcome = 'success'")()
	v, err := e.approve(c.ID, sess, code)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != transaction.StateFailed || v.Summary != transaction.SummaryAllFailed {
		t.Fatalf("state %s summary %s", v.State, v.Summary)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Documents[0]; d.Status != transaction.DocFailed || len(d.Signature) != 0 || !strings.Contains(d.Error, "audit") {
		t.Fatalf("document %+v", d)
	}
}

// TestNewNeedsSigning: no signing service, no transaction service.
func TestNewNeedsSigning(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := transaction.New(transaction.Options{Store: e.db, Portals: e.portals, Citizens: e.reg, Certificates: e.ca,
		SMS: outboxOf(t, e), OTPKey: e.otpKey, BaseURL: "https://firma.example.es"}); err == nil {
		t.Fatal("transaction.New accepted no signing service")
	}
}
