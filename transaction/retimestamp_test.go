package transaction_test

import (
	"context"
	"crypto"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestRetimestamp runs the archive timestamp renewal job over stored
// B-LTA results (a CAdES and a PAdES) with the test clock: nothing is
// due until the clock reaches the margin before the TSA certificate's
// expiry; a TSA fault then leaves both results as they were, signed and
// due, and the job backs off; once the TSA answers, both get a new
// archive timestamp, recorded in the audit log, and still verify as
// B-LTA. Cost: one approval, four archive timestamps.
func TestRetimestamp(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	var down atomic.Bool
	ts := pki.Timestamper(t)
	flaky := signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
		if down.Load() {
			return nil, errors.New("tsa down")
		}
		return ts.Timestamp(ctx, h, d)
	})
	var e *env
	e = newEnvOn(t, tok, func(o *transaction.Options) {
		o.Timestamper = flaky
		if e != nil {
			o.Validation = e.ca.Gatherer()
		}
	})
	e.restart()
	p := e.portal("Portal", nil)
	citizen := e.advanced(23456789)
	txt, pdf := readFile(t, "resolucion.txt"), readFile(t, "simple.pdf")
	c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Level: signer.LevelLTA, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "resolucion.txt", MediaType: "text/plain", Content: txt, Format: signer.FormatCAdES},
			{Name: "solicitud.pdf", MediaType: "application/pdf", Content: pdf}}})
	if err != nil {
		t.Fatal(err)
	}
	sess, code := e.login(c.ID, citizen)
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	before, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Due two hours from now, checked every hour.
	margin := time.Until(pki.TSACert.NotAfter) - 2*time.Hour
	r, err := e.svc.NewRetimestamper(transaction.RetimestampConfig{Enabled: true, Interval: time.Hour, Margin: margin}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pass := func(want transaction.RetimestampPass) {
		t.Helper()
		got, err := r.Pass(e.ctx)
		if err != nil || got != want {
			t.Fatalf("pass: %+v, %v; want %+v", got, err, want)
		}
	}
	pass(transaction.RetimestampPass{})
	e.clock.Add(3 * time.Hour)
	down.Store(true)
	pass(transaction.RetimestampPass{Due: 2, Failed: 2})
	same, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range same.Documents {
		if string(same.Documents[i].Signature) != string(before.Documents[i].Signature) || same.Documents[i].Status != transaction.DocSigned {
			t.Fatalf("document %d changed by a failed renewal", i)
		}
	}
	// Backoff after faults: a minute, doubling, never past the interval;
	// the interval again after a clean pass.
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		if got := r.NextWait(true); got < want*8/10 || got > want*12/10 {
			t.Errorf("wait %d after faults: %s, want about %s", i, got, want)
		}
	}
	if got := r.NextWait(false); got != time.Hour {
		t.Errorf("wait after a clean pass: %s, want the interval", got)
	}
	if got := r.NextWait(true); got > 2*time.Minute {
		t.Errorf("backoff not reset: %s", got)
	}

	down.Store(false)
	pass(transaction.RetimestampPass{Due: 2, Renewed: 2})
	after, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Roots: testpki.Pool(e.ca.Root()), TSARoots: testpki.Pool(pki.TSARoot.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range after.Documents {
		if string(d.Signature) == string(before.Documents[i].Signature) {
			t.Fatalf("document %d not renewed", i)
		}
		f := []signer.Format{signer.FormatCAdES, signer.FormatPAdES}[i]
		at, err := signer.LastArchiveTimestamp(d.Signature, f)
		if err != nil || at == nil {
			t.Fatalf("document %d: no archive timestamp after renewal: %v", i, err)
		}
		var rep *verify.Report
		if f == signer.FormatPAdES {
			rep, err = v.PDF(e.ctx, d.Signature)
		} else {
			rep, err = v.CAdESDigest(e.ctx, d.Signature, crypto.SHA256, d.Digest)
		}
		if err != nil || rep.Verdict != verify.Valid || rep.Signatures[0].Level != "B-LTA" {
			t.Fatalf("document %d after renewal: %v %+v", i, err, rep)
		}
	}
	page, err := e.audit.Query(e.ctx, audit.Filter{Events: []audit.Event{audit.SignatureRetimestamped}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Details["transaction"] != c.ID || page.Records[0].Actor.Role != audit.RoleSystem {
		t.Fatalf("audit: %d signature.retimestamped records, want 2 for %s: %+v", len(page.Records), c.ID, page.Records)
	}

	// Refused configurations name the field.
	for _, cfg := range []transaction.RetimestampConfig{{Interval: time.Second, Margin: time.Hour}, {Interval: time.Hour, Margin: time.Hour}} {
		if _, err := e.svc.NewRetimestamper(cfg, nil); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
