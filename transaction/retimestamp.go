package transaction

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

// RetimestampConfig is transactions.retimestamp: the background job that
// renews the archive timestamp of the B-LTA signatures firma keeps (the
// stored results, until transactions.retention purges them) before the
// certificate of the TSA that made their last one expires. Off by
// default.
type RetimestampConfig struct {
	Enabled bool `yaml:"enabled"`
	// Interval is how often the stored results are looked at.
	Interval time.Duration `yaml:"interval"`
	// Margin is how long before that TSA certificate's expiry a new
	// archive timestamp is added.
	Margin time.Duration `yaml:"margin"`
}

// Defaults of RetimestampConfig.
const (
	DefaultRetimestampInterval = 24 * time.Hour
	DefaultRetimestampMargin   = 90 * 24 * time.Hour
	// retimestampRetryFirst is the first wait after a pass with faults;
	// it doubles up to the interval.
	retimestampRetryFirst = time.Minute
	retimestampPage       = 100
)

func (c *RetimestampConfig) validate(bad func(field, msg string)) {
	if c.Interval < time.Minute || c.Interval > 30*24*time.Hour {
		bad("retimestamp.interval", "must be 1m to 720h")
	}
	if c.Margin < time.Hour {
		bad("retimestamp.margin", "must be at least 1h")
	}
	if c.Margin <= c.Interval {
		bad("retimestamp.margin", fmt.Sprintf("must be longer than retimestamp.interval (%s), or a certificate may expire between two passes", c.Interval))
	}
}

// RetimestampPass counts what one pass did.
type RetimestampPass struct {
	Renewed int // archive timestamps added
	Due     int // due, renewed or not
	Failed  int // due but not renewed: tried again after a backoff
	// Stuck are due ones whose last archive timestamp was itself made
	// within the margin: the TSA still signs with a certificate that
	// expires too soon, so a new one would not help. Logged, left alone.
	Stuck int
}

// Retimestamper renews archive timestamps; see RetimestampConfig.
type Retimestamper struct {
	s        *Service
	margin   time.Duration
	interval time.Duration
	runs     *prometheus.CounterVec
	// retry gives the wait after a pass with faults; reset after a clean
	// pass. A fault leaves the document as it was, due, so it is never a
	// permanent state.
	retry *backoff.ExponentialBackOff
}

// NewRetimestamper returns the job over the service's stored results;
// it needs the service's timestamper and validation gathering.
func (s *Service) NewRetimestamper(cfg RetimestampConfig, reg prometheus.Registerer) (*Retimestamper, error) {
	var errs []error
	cfg.validate(func(field, msg string) { errs = append(errs, fmt.Errorf("%s: %s", field, msg)) })
	if s.opt.Timestamper == nil || s.opt.Validation == nil {
		errs = append(errs, errors.New("retimestamp: needs a timestamp authority and validation material gathering"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Retimestamper{s: s, margin: cfg.Margin, interval: cfg.Interval,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_transaction_archive_renewals_total",
			Help: "Archive timestamps of stored B-LTA signatures looked at by the renewal job, by outcome (renewed, failed, stuck)."}, []string{"outcome"}),
		retry: backoff.NewExponentialBackOff()}
	// A little jitter keeps replicas that failed together apart.
	r.retry.InitialInterval, r.retry.MaxInterval, r.retry.Multiplier, r.retry.RandomizationFactor = retimestampRetryFirst, cfg.Interval, 2, 0.1
	if reg != nil {
		if err := reg.Register(r.runs); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Run passes over the stored results every interval, sooner (with
// backoff) after a pass with faults, until ctx ends.
func (r *Retimestamper) Run(ctx context.Context) {
	for {
		p, err := r.Pass(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := r.NextWait(err != nil || p.Failed > 0)
		if err != nil {
			r.s.log.ErrorContext(ctx, "archive timestamp renewal pass", "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// NextWait is the wait before the next pass: the interval after a clean
// pass, a backoff from a minute doubling up to the interval after faults.
func (r *Retimestamper) NextWait(faults bool) time.Duration {
	if !faults {
		r.retry.Reset()
		return r.interval
	}
	if d := r.retry.NextBackOff(); d > 0 && d < r.interval {
		return d
	}
	return r.interval
}

// Pass looks once at every stored B-LTA result and renews those whose
// last archive timestamp's TSA certificate expires within the margin.
// Only a store failure ends it early.
func (r *Retimestamper) Pass(ctx context.Context) (RetimestampPass, error) {
	var p RetimestampPass
	after := ""
	for {
		ts, err := r.s.st.Transactions(ctx, store.TransactionFilter{State: string(StateDone), After: after, Limit: retimestampPage})
		if err != nil {
			return p, fmt.Errorf("list transactions: %w", err)
		}
		for _, t := range ts {
			if t.Level != string(signer.LevelLTA) {
				continue
			}
			if err := r.transaction(ctx, t, &p); err != nil {
				return p, err
			}
		}
		if len(ts) < retimestampPage {
			return p, nil
		}
		after = ts[len(ts)-1].ID
	}
}

func (r *Retimestamper) transaction(ctx context.Context, t *store.Transaction, p *RetimestampPass) error {
	docs, err := r.s.st.Documents(ctx, t.ID, true)
	if err != nil {
		return fmt.Errorf("documents of %s: %w", t.ID, err)
	}
	now := r.s.now()
	for _, d := range docs {
		f := signer.Format(d.Format)
		if d.Status != string(DocSigned) || len(d.Result) == 0 || (f != signer.FormatCAdES && f != signer.FormatPAdES) {
			continue
		}
		at, err := signer.LastArchiveTimestamp(d.Result, f)
		if err != nil || at == nil {
			r.s.log.WarnContext(ctx, "stored B-LTA result without a readable archive timestamp", "transaction", t.ID, "document", d.Index, "err", err)
			continue
		}
		due := at.TSA.NotAfter.Add(-r.margin)
		if now.Before(due) {
			continue
		}
		p.Due++
		if !at.Time.Before(due) {
			p.Stuck++
			r.runs.WithLabelValues("stuck").Inc()
			r.s.log.WarnContext(ctx, "archive timestamp not renewed: the last one was made within the margin, by a TSA certificate that expires too soon",
				"transaction", t.ID, "document", d.Index, "tsa", at.TSA.Subject.String(), "tsa_not_after", at.TSA.NotAfter)
			continue
		}
		if err := r.renew(ctx, t, d, f, at); err != nil {
			p.Failed++
			r.runs.WithLabelValues("failed").Inc()
			r.s.log.ErrorContext(ctx, "archive timestamp renewal failed; retried after a backoff", "transaction", t.ID, "document", d.Index, "err", err)
			continue
		}
		p.Renewed++
		r.runs.WithLabelValues("renewed").Inc()
	}
	return nil
}

// renew adds an archive timestamp to d's stored result, over the
// validation material of the TSA of the one before, and records it.
func (r *Retimestamper) renew(ctx context.Context, t *store.Transaction, d *store.Document, f signer.Format, prev *signer.ArchiveTimestamp) error {
	_, h, err := ParseHash(d.Hash)
	if err != nil {
		return err
	}
	opt := signer.Options{Level: signer.LevelLTA, Hash: h, Timestamper: r.s.opt.Timestamper, Validation: r.s.opt.Validation.Batch()}
	var out []byte
	if f == signer.FormatPAdES {
		out, err = signer.ExtendPAdES(ctx, d.Result, opt)
	} else {
		out, err = signer.ExtendCAdES(ctx, d.Result, d.Digest, opt)
	}
	if err != nil {
		return err
	}
	next, err := signer.LastArchiveTimestamp(out, f)
	if err != nil || next == nil {
		return fmt.Errorf("the renewed signature has no readable archive timestamp: %v", err)
	}
	// The record comes first: a renewal that cannot be audited is not
	// stored, and is tried again.
	rec := &audit.Record{Event: audit.SignatureRetimestamped, Outcome: audit.Success, Actor: systemActor(), Portal: t.PortalID,
		Citizen: t.CitizenID, Documents: []audit.Document{auditDocument(d)}, Details: map[string]string{
			"transaction": t.ID, "document": fmt.Sprint(d.Index), "format": d.Format,
			"previous_tsa_not_after": prev.TSA.NotAfter.UTC().Format(time.RFC3339),
			"archive_time":           next.Time.UTC().Format(time.RFC3339),
			"tsa_not_after":          next.TSA.NotAfter.UTC().Format(time.RFC3339)}}
	if err := r.s.audit.Append(ctx, rec); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	nd := *d
	nd.Result = out
	if err := r.s.st.UpdateDocument(ctx, &nd, string(DocSigned)); err != nil {
		return fmt.Errorf("store the renewed signature: %w", err)
	}
	d.Result = out
	return nil
}
