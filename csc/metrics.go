package csc

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests   *prometheus.CounterVec
	otps       *prometheus.CounterVec
	signatures *prometheus.CounterVec
	extensions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_csc_requests_total", Help: "CSC API requests, by method and CSC error code (\"ok\" when none)."},
			[]string{"method", "code"}),
		otps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_csc_otps_total", Help: "CSC one-time passwords, by event: sent, resent, accepted, wrong, locked."},
			[]string{"event"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_csc_signatures_total", Help: "Hashes signed through signatures/signHash, by outcome."},
			[]string{"outcome"}),
		extensions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firma_csc_sad_extensions_total", Help: "SADs replaced by credentials/extendTransaction."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.otps, m.signatures, m.extensions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("csc metrics: %w", err)
		}
	}
	return m, nil
}

// CountRequest counts one API request by method and CSC error code ("ok"
// when none); the HTTP binding (api/rest/cschttp) calls it, as only it
// sees every request, refused ones included.
func (s *Service) CountRequest(method, code string) {
	s.m.requests.WithLabelValues(method, code).Inc()
}
