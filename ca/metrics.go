package ca

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	issued     *prometheus.CounterVec
	revoked    *prometheus.CounterVec
	errors     *prometheus.CounterVec
	ocsp       *prometheus.CounterVec
	crlNumber  *prometheus.GaugeVec
	crlEntries *prometheus.GaugeVec
}

// newMetrics registers the CA's metrics with reg; nil registers none.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_ca_certificates_issued_total",
			Help: "Certificates issued or imported, by kind (citizen, external, root, issuing, ocsp).",
		}, []string{"kind"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_ca_certificates_revoked_total",
			Help: "Citizen certificates revoked, by RFC 5280 reason.",
		}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_ca_errors_total",
			Help: "CA operations that failed after reaching the HSM or store, by operation.",
		}, []string{"op"}),
		ocsp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_ca_ocsp_responses_total",
			Help: "OCSP responses sent, by status (good, revoked, unknown, malformed, unauthorized, trylater, error).",
		}, []string{"status"}),
		crlNumber: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "firma_ca_crl_number",
			Help: "Number of the latest CRL signed by this process, by issuer.",
		}, []string{"issuer"}),
		crlEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "firma_ca_crl_entries",
			Help: "Revoked certificates listed in the latest CRL, by issuer.",
		}, []string{"issuer"}),
	}
	if reg != nil {
		reg.MustRegister(m.issued, m.revoked, m.errors, m.ocsp, m.crlNumber, m.crlEntries)
	}
	return m
}
