package transaction

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	created   *prometheus.CounterVec
	ended     *prometheus.CounterVec
	otp       *prometheus.CounterVec
	sms       *prometheus.CounterVec
	documents *prometheus.CounterVec
	signing   prometheus.Histogram
	callbacks *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_created_total",
			Help: "Transaction creation requests, by outcome (ok or the refusal code)."}, []string{"outcome"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_ended_total",
			Help: "Transactions that reached a final state, by state."}, []string{"state"}),
		otp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_otp_checks_total",
			Help: "One-time password checks, by result (ok, wrong, expired, locked)."}, []string{"result"}),
		sms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_otp_sends_total",
			Help: "One-time passwords sent by SMS, by outcome."}, []string{"outcome"}),
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_documents_total",
			Help: "Documents processed, by format and status."}, []string{"format", "status"}),
		signing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "firma_transaction_signing_duration_seconds",
			Help: "Time from approval to the end of signing a transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_callbacks_total",
			Help: "Callback deliveries to portals, by outcome (delivered, retry, failed)."}, []string{"outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.created, m.ended, m.otp, m.sms, m.documents, m.signing, m.callbacks} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("transaction metrics: %w", err)
			}
		}
	}
	return m, nil
}
