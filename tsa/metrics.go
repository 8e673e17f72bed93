package tsa

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// register registers c with reg, or returns the collector already
// registered under the same description, so that two clients (or a client
// rebuilt on reload) can share one registerer. A nil reg registers nothing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, err *error) C {
	if reg == nil || *err != nil {
		return c
	}
	if e := reg.Register(c); e != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(e, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		*err = fmt.Errorf("register metrics: %w", e)
	}
	return c
}

type clientMetrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	breaker  *prometheus.GaugeVec
	opened   *prometheus.CounterVec
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	var err error
	m := &clientMetrics{
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "firma_tsa_request_duration_seconds",
			Help:    "Time-stamp requests to a TSA, by URL and outcome (ok, unavailable, rejected, bad_reply).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"url", "outcome"}), &err),
		failures: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_tsa_failures_total",
			Help: "Failed time-stamp requests to a TSA, by URL and outcome (unavailable, rejected, bad_reply).",
		}, []string{"url", "outcome"}), &err),
		breaker: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "firma_tsa_breaker_state",
			Help: "Circuit breaker of each external TSA: 0 closed, 1 open (skipped after a timeout or failed connection), 2 half-open (one trial request).",
		}, []string{"url"}), &err),
		opened: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_tsa_breaker_open_total",
			Help: "Times an external TSA's circuit breaker opened after a timeout or failed connection.",
		}, []string{"url"}), &err),
	}
	return m, err
}

type serverMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	rows         *prometheus.CounterVec
	summaries    *prometheus.CounterVec
	pending      prometheus.Gauge
	intervalOpen prometheus.Gauge

	// The series of every granted token, bound once: a label lookup per
	// request hashes the label and takes the vector's lock.
	granted    prometheus.Counter
	grantedDur prometheus.Observer
	stored     prometheus.Counter
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	var err error
	m := &serverMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_tsa_server_requests_total",
			Help: "Requests to the built-in TSA, by result (granted, a PKIFailureInfo name, or an HTTP error).",
		}, []string{"result"}), &err),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "firma_tsa_server_request_duration_seconds",
			Help:    "Time the built-in TSA took to answer, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"result"}), &err),
		rows: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_tsa_issuance_rows_total",
			Help: "Tokens of the built-in TSA by issuance-log write: stored (the token was handed out) or failed (signed, withheld).",
		}, []string{"result"}), &err),
		summaries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_tsa_audit_summaries_total",
			Help: "Audit interval summaries of the built-in TSA, by result: recorded, or failed (kept and retried).",
		}, []string{"result"}), &err),
		pending: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_tsa_audit_summaries_pending",
			Help: "Closed audit intervals of the built-in TSA whose summary is not recorded yet.",
		}), &err),
		intervalOpen: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_tsa_audit_interval_open",
			Help: "1 while an audit interval of the built-in TSA is open (its key.activated written, its summary not yet).",
		}), &err),
	}
	for _, r := range []string{"stored", "failed"} {
		m.rows.WithLabelValues(r)
	}
	m.granted, m.grantedDur = m.requests.WithLabelValues("granted"), m.duration.WithLabelValues("granted")
	m.stored = m.rows.WithLabelValues("stored")
	for _, r := range []string{"recorded", "failed"} {
		m.summaries.WithLabelValues(r)
	}
	return m, err
}
