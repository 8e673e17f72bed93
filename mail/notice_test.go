package mail_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/mail/smtptest"
)

// Notices give every text the subject, report addresses that can never
// receive it as ErrUndeliverable (which the notifier skips, so it is not
// held back) and return every other failure (so the notifier retries).
func TestNotices(t *testing.T) {
	const bad, later = "bad@example.es", "later@example.es"
	srv := smtptest.New(t, smtptest.Options{Refuse: []string{bad}, Defer: []string{later}})
	g, err := mail.NewSMTP(mail.SMTPOptions{Addr: srv.Addr, From: "no-reply@firma.example.es", RootCAs: srv.CertPool, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	n, err := mail.NewNotices(g, "", nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, to  string
		wantErr   error
		delivered int
		dropped   float64
	}{
		{"delivered", rcpt, nil, 1, 0},
		{"refused for good: dropped", bad, mail.ErrUndeliverable, 1, 1},
		{"invalid address: dropped", "not an address", mail.ErrUndeliverable, 1, 2},
		{"deferred: returned for a retry", later, mail.ErrRejected, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := n.Send(context.Background(), tc.to, body)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("send: %v, want %v", err, tc.wantErr)
			}
			if got := len(srv.Messages()); got != tc.delivered {
				t.Errorf("%d messages delivered, want %d", got, tc.delivered)
			}
			if got := testutil.ToFloat64(dropped(t, reg)); got != tc.dropped {
				t.Errorf("dropped %v, want %v", got, tc.dropped)
			}
		})
	}
	checkMessageSubject(t, srv.Messages()[0].Data, mail.DefaultNoticeSubject)
	if _, err := mail.NewNotices(g, "two\nlines", nil, nil); !errors.Is(err, mail.ErrSubject) {
		t.Errorf("multi-line subject: %v", err)
	}
}

func dropped(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "firma_mail_notices_dropped_total" {
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return c
}
