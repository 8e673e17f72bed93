package audit_test

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/mail/smtptest"
	"github.com/firma-cloud/firma/store"
)

// Citizens get an e-mail after each signature made with their key,
// through a real SMTP relay; a citizen whose address the relay refuses
// for good does not hold back the notices of the citizens after them.
func TestNotifySignaturesByEmail(t *testing.T) {
	e := newEnv(t, audit.Options{})
	ctx := context.Background()
	citizens := []struct{ id, email string }{
		{"12345678Z", "ana@example.es"},
		{"87654321X", "gone@example.es"}, // refused by the relay
		{"11111111H", "luis@example.es"},
	}
	for i, c := range citizens {
		if err := e.db.CreateCitizen(ctx, &store.Citizen{ID: c.id, GivenName: "ANA", Surnames: "GARCIA", Mobile: "+3461234567" + string(rune('0'+i)),
			Email: c.email, Level: "advanced", Method: "in_person", Status: "active"}); err != nil {
			t.Fatal(err)
		}
	}
	srv := smtptest.New(t, smtptest.Options{Username: "firma", Password: "relay-pass", Refuse: []string{"gone@example.es"}})
	gw, err := mail.NewSMTP(mail.SMTPOptions{Addr: srv.Addr, From: `"Cl@ve Firma" <no-reply@firma.example.es>`, Username: "firma",
		Password: "relay-pass", RootCAs: srv.CertPool, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	notices, err := mail.NewNotices(gw, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.log.NotifySignatures(cctx, audit.NotifyOptions{Contacts: e.db, Email: notices, Name: "notify-email",
			Interval: 20 * time.Millisecond, Registerer: reg})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for {
		if pos, _ := e.db.AuditCursor(ctx, "notify-email"); pos >= 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	digest := strings.Repeat("ab", 32)
	for i, c := range citizens {
		r := &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RolePortal, ID: "aeat"},
			Citizen: c.id, Portal: "aeat", KeyID: "key-1", Time: time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)}
		for range i + 1 {
			r.Documents = append(r.Documents, audit.Document{Hash: "sha-256", Digest: digest})
		}
		if err := e.log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	srv.Wait(t, 2, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // nothing more arrives
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	// The refused address is counted as dropped, not as sent.
	want := `
# HELP firma_audit_notifications_total Messages telling citizens of signatures made with their key, by channel and outcome.
# TYPE firma_audit_notifications_total counter
firma_audit_notifications_total{channel="email",outcome="dropped"} 1
firma_audit_notifications_total{channel="email",outcome="sent"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "firma_audit_notifications_total"); err != nil {
		t.Error(err)
	}
	for i, tc := range []struct{ to, docs string }{{"ana@example.es", "se firmó 1 documento"}, {"luis@example.es", "se firmaron 3 documentos"}} {
		m := msgs[i]
		if len(m.To) != 1 || m.To[0] != tc.to || !m.TLS || m.User != "firma" {
			t.Errorf("message %d: to %v, tls %t, user %q", i, m.To, m.TLS, m.User)
		}
		pm, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		if subj != mail.DefaultNoticeSubject {
			t.Errorf("subject %q", subj)
		}
		b, _ := io.ReadAll(quotedprintable.NewReader(pm.Body))
		text := string(b)
		want := "el 25/11/2026 a las 10:30 " + tc.docs + " con su certificado a petición de aeat."
		if !strings.Contains(text, want) || strings.Contains(text, digest) {
			t.Errorf("body %q, want it to hold %q and no digest", text, want)
		}
	}
}
