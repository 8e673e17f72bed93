package transaction_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/transaction"
)

func openAudit(t *testing.T, e *env) *audit.Log {
	t.Helper()
	l, err := audit.Open(e.ctx, e.db, audit.Options{Node: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAuditRecordsEveryStep runs a transaction with one wrong code and
// reads the audit log back: every step is there, each signature as a
// key.used record with its documents' digests, and no code anywhere.
func TestAuditRecordsEveryStep(t *testing.T) {
	var log *audit.Log
	e := newEnv(t, nil)
	e.mut = func(o *transaction.Options) { log = openAudit(t, e); o.Auditor = log }
	e.restart()
	defer log.Close()
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, _ := threeDocs(t)
	c := e.create(p, citizen, docs...)
	sess, code := e.login(c.ID, citizen)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if _, err := e.svc.Approve(e.ctx, c.ID, sess, wrong); transaction.CodeOf(err) != transaction.CodeOTPInvalid {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := e.svc.Approve(e.ctx, c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	page, err := log.Query(e.ctx, audit.Filter{Portal: p.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[audit.Event]int{}
	formats := map[string]int{}
	for _, r := range page.Records {
		count[r.Event]++
		if r.Event == audit.KeyUsed {
			if r.Outcome != audit.Success || r.Citizen != citizen || r.KeyID == "" || r.RequestID != c.ID {
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
		audit.KeyUsed: 3, audit.TransactionStateChange: 1} {
		if count[ev] != n {
			t.Errorf("%d %s records, want %d (all: %v)", count[ev], ev, n, count)
		}
	}
	if formats["raw"] != 1 || formats["cades"] != 1 || formats["pades"] != 1 {
		t.Errorf("documents per format in key.used: %v", formats)
	}
}

// TestAuditUnavailableWithholdsSignatures closes the audit log before the
// approval: nothing signed may leave without its record.
func TestAuditUnavailableWithholdsSignatures(t *testing.T) {
	var log *audit.Log
	e := newEnv(t, nil)
	e.mut = func(o *transaction.Options) { log = openAudit(t, e); o.Auditor = log }
	e.restart()
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	sess, code := e.login(c.ID, citizen)
	log.Close()
	v, err := e.svc.Approve(e.ctx, c.ID, sess, code)
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
