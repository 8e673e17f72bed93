package keystore

import "github.com/prometheus/client_golang/prometheus"

// metrics are the keystore's Prometheus collectors.
type metrics struct {
	open    prometheus.Gauge
	inUse   prometheus.Gauge
	wait    prometheus.Histogram
	busy    prometheus.Counter
	errors  *prometheus.CounterVec
	ops     *prometheus.CounterVec
	unwraps prometheus.Counter
	hits    prometheus.Counter
	// ops' sign series, looked up once: the signing path bumps one per call.
	signOK, signErr prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_keystore_sessions_open", Help: "PKCS#11 sessions open in the pool."}),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_keystore_sessions_in_use", Help: "PKCS#11 sessions handed out right now."}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "firma_keystore_session_wait_seconds", Help: "Time spent waiting for a free session.",
			Buckets: []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 5}}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firma_keystore_busy_total", Help: "Requests refused because no session became free in time."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_keystore_session_errors_total", Help: "Session, login and token failures the pool recovered from or reported."},
			[]string{"kind"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_keystore_operations_total", Help: "Key operations by kind and outcome."},
			[]string{"op", "outcome"}),
		unwraps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firma_keystore_unwraps_total", Help: "Wrapped keys unwrapped into the HSM."}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firma_keystore_live_key_hits_total", Help: "Signatures served by a cached live wrapped key."}),
	}
	m.signOK, m.signErr = m.ops.WithLabelValues("sign", "ok"), m.ops.WithLabelValues("sign", "error")
	if reg != nil {
		reg.MustRegister(m.open, m.inUse, m.wait, m.busy, m.errors, m.ops, m.unwraps, m.hits)
	}
	return m
}
