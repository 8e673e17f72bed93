package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// Citizens get an SMS after each signature made with their key, sent from
// the log through the SMS outbox; a restart resumes where it stopped.
func TestNotifySignatures(t *testing.T) {
	e := newEnv(t, audit.Options{})
	ctx := context.Background()
	const mobile = "+34612345678"
	if err := e.db.CreateCitizen(ctx, &store.Citizen{ID: "12345678Z", GivenName: "ANA", Surnames: "GARCIA", Mobile: mobile,
		Email: "ana@example.es", Level: "advanced", Method: "in_person", Status: "active"}); err != nil {
		t.Fatal(err)
	}
	// A mobile stored in a form no SMS gateway takes (the registry never
	// stores one): that citizen's notice is dropped, not retried for ever
	// ahead of everyone else's.
	if err := e.db.CreateCitizen(ctx, &store.Citizen{ID: "87654321X", GivenName: "LUIS", Surnames: "PEREZ", Mobile: "612345678",
		Level: "advanced", Method: "in_person", Status: "active"}); err != nil {
		t.Fatal(err)
	}
	outbox, err := sms.NewOutbox(e.db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	start := func() (stop func()) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- e.log.NotifySignatures(cctx, audit.NotifyOptions{Contacts: e.db, SMS: outbox, Interval: 20 * time.Millisecond, Registerer: reg})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	signed := func(citizen string, outcome audit.Outcome, docs int) {
		r := &audit.Record{Event: audit.KeyUsed, Outcome: outcome, Actor: audit.Actor{Role: audit.RolePortal, ID: "aeat"},
			Citizen: citizen, Portal: "aeat", KeyID: "key-1",
			Time: time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)}
		for i := 0; i < docs; i++ {
			r.Documents = append(r.Documents, audit.Document{Hash: "sha-256", Digest: strings.Repeat("ab", 32)})
		}
		if err := e.log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(n int) []*store.SMS {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			msgs, err := e.db.SMSes(ctx, mobile, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) >= n || time.Now().After(deadline) {
				return msgs
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	signed("12345678Z", audit.Success, 1) // before the first run: not notified
	stop := start()
	for {
		if pos, _ := e.db.AuditCursor(ctx, "notify"); pos >= 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	signed("87654321X", audit.Success, 1) // undeliverable: dropped
	signed("12345678Z", audit.Success, 2)
	signed("12345678Z", audit.Failure, 1)                // nothing was signed
	signed("99999999R", audit.Success, 1)                // not a registered citizen
	if err := e.log.Append(ctx, sample(2)); err != nil { // otp.sent: not a signature
		t.Fatal(err)
	}
	msgs := waitFor(1)
	stop()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1: %+v", len(msgs), msgs)
	}
	want := "Cl@ve Firma: el 25/11/2026 a las 10:30 se firmaron 2 documentos con su certificado a petición de aeat."
	if !strings.HasPrefix(msgs[0].Text, want) {
		t.Errorf("message %q, want it to start %q", msgs[0].Text, want)
	}

	// Signed while the notifier was down: sent once it is back, and the
	// earlier one is not sent again.
	signed("12345678Z", audit.Success, 1)
	stop = start()
	msgs = waitFor(2)
	time.Sleep(100 * time.Millisecond)
	stop()
	msgs, _ = e.db.SMSes(ctx, mobile, 100)
	if len(msgs) != 2 || !strings.Contains(msgs[0].Text+msgs[1].Text, "se firmó 1 documento con") {
		t.Fatalf("after restart: %+v", msgs)
	}
	if got := counterSum(t, reg, "firma_audit_notifications_total"); got != 3 {
		t.Errorf("notifications counter %v, want 3 (2 sent, 1 dropped)", got)
	}
	want = `
# HELP firma_audit_notifications_total Messages telling citizens of signatures made with their key, by channel and outcome.
# TYPE firma_audit_notifications_total counter
firma_audit_notifications_total{channel="sms",outcome="dropped"} 1
firma_audit_notifications_total{channel="sms",outcome="sent"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "firma_audit_notifications_total"); err != nil {
		t.Error(err)
	}
}
