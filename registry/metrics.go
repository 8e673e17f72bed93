package registry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	registrations *prometheus.CounterVec
	logins        *prometheus.CounterVec
	imported      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_registry_registrations_total",
			Help: "Registration attempts by method and result (ok, invalid, refused, rejected, error)."}, []string{"method", "result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_registry_logins_total",
			Help: "Cl@ve Permanente password checks by result (ok, bad, throttled, locked, error)."}, []string{"result"}),
		imported: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_registry_imported_rows_total",
			Help: "Bulk-import rows by result (created, existing, bad)."}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.registrations, m.logins, m.imported} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registry metrics: %w", err)
			}
		}
	}
	return m, nil
}
