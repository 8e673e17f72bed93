package mail_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/store/sqlite"
)

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	o, err := mail.NewOutbox(db, mail.OutboxOptions{Registerer: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		to, subject, text string
		want              error
	}{
		{to: "ana@example.es", subject: "Cl@ve Firma: aviso", text: "Se firmó 1 documento."},
		{to: "luis@example.es", subject: "segundo", text: "second"},
		{to: "ana@example.es", subject: "tercero", text: "third"},
		{to: "Ana <ana@example.es>", subject: "s", text: "t", want: mail.ErrRecipient},
		{to: "ana@example.es", subject: "a\nb", text: "t", want: mail.ErrSubject},
		{to: "ana@example.es", subject: "s", text: "", want: mail.ErrText},
	}
	for _, tc := range tests {
		if err := o.Send(ctx, tc.to, tc.subject, tc.text); !errors.Is(err, tc.want) {
			t.Errorf("Send(%q, %q) = %v, want %v", tc.to, tc.subject, err, tc.want)
		}
	}
	msgs, err := o.Messages(ctx, "ana@example.es", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Subject != "tercero" || msgs[1].Text != "Se firmó 1 documento." || msgs[1].Subject != "Cl@ve Firma: aviso" ||
		!msgs[1].CreatedAt.Equal(time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)) || len(msgs[0].ID) != 24 {
		t.Fatalf("messages to ana: %+v", msgs)
	}
	if all, _ := o.Messages(ctx, "", 10); len(all) != 3 {
		t.Fatalf("all messages: %d", len(all))
	}
	want := `# HELP firma_mail_outbox_messages_total E-mails through the outbox mail gateway, by outcome (stored, failed).
# TYPE firma_mail_outbox_messages_total counter
firma_mail_outbox_messages_total{outcome="failed"} 3
firma_mail_outbox_messages_total{outcome="stored"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "firma_mail_outbox_messages_total"); err != nil {
		t.Error(err)
	}
	// Stored at +1s, +2s, +3s; purging at +4s keeps the last two seconds.
	if n, err := o.Purge(ctx, 2*time.Second); err != nil || n != 1 {
		t.Fatalf("purge older than 2s: %d, %v", n, err)
	}
	if n, err := o.Purge(ctx, 0); err != nil || n != 2 {
		t.Fatalf("purge all: %d, %v", n, err)
	}
	if left, _ := o.Messages(ctx, "", 10); len(left) != 0 {
		t.Fatalf("%d messages left after purge", len(left))
	}
}

// A store that fails is reported, and nothing is counted as stored.
func TestOutboxStoreFailure(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := mail.NewOutbox(db, mail.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := o.Send(ctx, "ana@example.es", "s", "t"); err == nil || !strings.HasPrefix(err.Error(), "mail outbox:") {
		t.Fatalf("send on a closed store: %v", err)
	}
}
