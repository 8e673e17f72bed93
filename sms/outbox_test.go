package sms_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/sms"
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
	// Each reading of the clock is a second later.
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	o, err := sms.NewOutbox(db, sms.OutboxOptions{Registerer: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		to, text string
		want     error
	}{
		{to: "+34612345678", text: "Cl@ve: your code is ABCD."},
		{to: "+33612345678", text: "second"},
		{to: "+34612345678", text: "third"},
		{to: "612345678", text: "no country code", want: sms.ErrRecipient},
		{to: "+34 612 345 678", text: "not E.164", want: sms.ErrRecipient},
		{to: "+34612345678", text: "", want: sms.ErrText},
		{to: "+34612345678", text: strings.Repeat("x", sms.MaxText+1), want: sms.ErrText},
		{to: "+34612345678", text: "bad \xff utf8", want: sms.ErrText},
	}
	for _, tt := range tests {
		if err := o.Send(ctx, tt.to, tt.text); !errors.Is(err, tt.want) {
			t.Errorf("Send(%q, %.20q) = %v, want %v", tt.to, tt.text, err, tt.want)
		}
	}
	msgs, err := o.Messages(ctx, "+34612345678", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Text != "third" || msgs[1].Text != "Cl@ve: your code is ABCD." {
		t.Fatalf("messages to +34612345678: %+v", msgs)
	}
	all, _ := o.Messages(ctx, "", 10)
	if len(all) != 3 {
		t.Fatalf("all messages: %d", len(all))
	}
	want := `# HELP firma_sms_sent_total Text messages accepted by the SMS gateway.
# TYPE firma_sms_sent_total counter
firma_sms_sent_total 3
# HELP firma_sms_failed_total Text messages the SMS gateway refused or failed to send.
# TYPE firma_sms_failed_total counter
firma_sms_failed_total 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "firma_sms_sent_total", "firma_sms_failed_total"); err != nil {
		t.Error(err)
	}
	// Sent at +1s, +2s, +3s; purging at +4s keeps the last two seconds.
	if n, err := o.Purge(ctx, 2*time.Second); err != nil || n != 1 {
		t.Fatalf("purge older than 2s: %d, %v", n, err)
	}
	if n, err := o.Purge(ctx, 0); err != nil || n != 2 {
		t.Fatalf("purge all: %d, %v", n, err)
	}
	if left, _ := o.Messages(ctx, "", 10); len(left) != 0 {
		t.Fatalf("%d messages left after purge", len(left))
	}
	if got := sms.Mask("+34612345678"); got != "+34******678" {
		t.Errorf("Mask = %q", got)
	}
}
