package audit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	commit      prometheus.Histogram
	append      prometheus.Histogram
	batch       prometheus.Histogram
	backlog     prometheus.Gauge
	appended    *prometheus.CounterVec
	failures    prometheus.Counter
	size        prometheus.Gauge
	checkpoints *prometheus.CounterVec
	lastCP      prometheus.Gauge
	signatures  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "firma_audit_commit_duration_seconds",
			Help:    "Time to commit one batch of audit records, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "firma_audit_append_duration_seconds",
			Help:    "Time an Append waits, queueing and commit, as the audited operation sees it.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "firma_audit_batch_records",
			Help:    "Records committed per group-commit batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_audit_backlog_records",
			Help: "Records waiting to be committed.",
		}),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_audit_appended_records_total",
			Help: "Audit records committed, by event and outcome.",
		}, []string{"event", "outcome"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firma_audit_append_failures_total",
			Help: "Audit records that could not be committed (their operations were refused).",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_audit_tree_size_records",
			Help: "Records in the audit log.",
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_audit_checkpoints_total",
			Help: "Checkpoint signings, by result (ok, error, untimestamped).",
		}, []string{"result"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_audit_signatures_total",
			Help: "Documents signed with user and system keys, as recorded in the audit log, by portal, algorithm and format (key.used details) and outcome.",
		}, []string{"portal", "algorithm", "format", "outcome"}),
		lastCP: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firma_audit_last_checkpoint_timestamp_seconds",
			Help: "Unix time of the latest signed checkpoint.",
		}),
	}
	// Zero series up front, so that rate() and alerts see them before the
	// first event.
	for _, r := range []string{"ok", "error", "untimestamped"} {
		m.checkpoints.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.commit, m.append, m.batch, m.backlog, m.appended, m.failures, m.size, m.checkpoints, m.lastCP, m.signatures)
	}
	return m
}

// Detail keys of key.used records that label firma_audit_signatures_total.
const (
	DetailAlgorithm = "algorithm" // e.g. "ecdsa-p256", "rsa-pss-3072"
	DetailFormat    = "format"    // e.g. "pades", "cades", "xades", "raw"
	// DetailActivation links a key.used record to the key.activated record
	// of the decision it carries out.
	DetailActivation = "activation"
)

// label keeps metric label values bounded: a caller's free text must not
// create unbounded series.
func label(v, def string) string {
	if v == "" {
		return def
	}
	if len(v) > 64 {
		return "other"
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return "other"
		}
	}
	return v
}

// counted is what the metrics need of a record, taken in Append so that
// the committer never reads the caller's maps.
type counted struct {
	event, outcome, portal, algorithm, format string
	documents                                 int
}

func countedOf(r *Record) counted {
	c := counted{event: string(r.Event), outcome: string(r.Outcome)}
	if r.Event == KeyUsed {
		c.portal = label(r.Portal, "none")
		c.algorithm = label(r.Details[DetailAlgorithm], "unknown")
		c.format = label(r.Details[DetailFormat], "raw")
		c.documents = max(len(r.Documents), 1)
		if s, ok, err := ParseIssuanceSummary(r.Details); ok && err == nil {
			// A TSA interval summary stands for every token it counts.
			c.documents = int(s.Count + s.Withheld)
		}
	}
	return c
}

// observe counts a committed record.
func (m *metrics) observe(c counted) {
	m.appended.WithLabelValues(c.event, c.outcome).Inc()
	if c.documents > 0 {
		m.signatures.WithLabelValues(c.portal, c.algorithm, c.format, c.outcome).Add(float64(c.documents))
	}
}
