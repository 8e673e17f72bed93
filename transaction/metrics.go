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
	queueFull prometheus.Counter
	retries   *prometheus.CounterVec
	leaseLost prometheus.Counter
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
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{Name: "firma_transaction_sign_queue_full_total",
			Help: "Approved transactions the signing queue had no room for; the resume scan offers them again."}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_sign_retries_total",
			Help: "Signings handed back to be tried again later, by cause (hsm, audit)."}, []string{"cause"}),
		leaseLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "firma_transaction_sign_lease_lost_total",
			Help: "Signings that found their lease taken over (they had stalled past it); their unreleased signatures were dropped."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.created, m.ended, m.otp, m.sms, m.documents, m.signing, m.callbacks, m.queueFull, m.retries, m.leaseLost} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("transaction metrics: %w", err)
			}
		}
	}
	return m, nil
}

// registerWorkerGauges exports the signing queue and pool, read when
// scraped.
func registerWorkerGauges(reg prometheus.Registerer, w *workers, size int) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "firma_transaction_sign_queue_depth",
			Help: "Approved transactions waiting in this process's signing queue."}, func() float64 { return float64(len(w.queue)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "firma_transaction_sign_workers_busy",
			Help: "Signing workers signing a transaction now."}, func() float64 { return float64(w.busy.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "firma_transaction_sign_workers",
			Help: "Signing workers in this process (transactions.sign_workers)."}, func() float64 { return float64(size) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("transaction metrics: %w", err)
		}
	}
	return nil
}
