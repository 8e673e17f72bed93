package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
)

// People with credentials of their own — auditors (audit.auditors),
// registry staff (registry.staff) and operators (auth.operators) — live in
// the config file, which 'firmactl auditors|staff|operators add|remove'
// edits. firmad applies the lists at start, and the auditors and staff
// again on SIGHUP (systemctl reload), without a restart, and
// writes every difference from what it last applied to the audit log
// before the change takes effect: staff.created, staff.changed or
// staff.disabled, with details source=config, kind (auditor or staff),
// name, role and a fingerprint of the credential (a hash of its digest:
// the tokens are 256-bit random, so it tells nothing of them). What it last applied is
// read back from those records, so a change made while firmad was down is
// recorded at the next start, and nothing else has to be kept.

// Details of the access records.
const (
	accessSource = "config"
	detailSource = "source"
	detailKind   = "kind"
	detailName   = "name"
	detailRole   = "role"
	detailCred   = "fingerprint"
	kindAuditor  = "auditor"
	kindStaff    = "staff"
	kindOperator = "operator"
)

// access is one configured person as the log records them.
type access struct {
	kind, name, role, cred string
}

func (p access) key() string { return p.kind + "/" + p.name }

// credFingerprint names a credential in the log without copying its
// digest: enough to tell that it changed.
func credFingerprint(token, cert string) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, ":", "")) }
	h := sha256.Sum256([]byte("token:" + norm(token) + "\ncert:" + norm(cert)))
	return hex.EncodeToString(h[:8])
}

// configuredAccess lists the auditors and staff of cfg, and the operators
// of running: operators are read at start only (the gRPC interceptors and
// the REST routes each hold them), so a reload records no operator change
// it does not apply.
func configuredAccess(cfg, running *config.Config) []access {
	var out []access
	for _, o := range running.Auth.Operators {
		out = append(out, access{kind: kindOperator, name: o.Name, role: audit.RoleAdmin, cred: credFingerprint(o.TokenSHA256, o.CertSHA256)})
	}
	for _, c := range auditSection(cfg).Auditors {
		out = append(out, access{kind: kindAuditor, name: c.Name, role: audit.RoleAuditor, cred: credFingerprint(c.TokenSHA256, c.CertSHA256)})
	}
	for _, s := range registrySection(cfg).Staff {
		out = append(out, access{kind: kindStaff, name: s.Name, role: s.Role, cred: credFingerprint(s.TokenSHA256, "")})
	}
	return out
}

// appliedAccess reads back from the log what firmad last applied.
func appliedAccess(ctx context.Context, l *audit.Log) (map[string]access, error) {
	applied := map[string]access{}
	f := audit.Filter{Events: []audit.Event{audit.StaffCreated, audit.StaffChanged, audit.StaffDisabled}, Limit: audit.MaxPage}
	for {
		p, err := l.Query(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("read applied auditors and staff: %w", err)
		}
		for _, r := range p.Records {
			d := r.Details
			if r.Outcome != audit.Success || d[detailSource] != accessSource {
				continue
			}
			p := access{kind: d[detailKind], name: d[detailName], role: d[detailRole], cred: d[detailCred]}
			if r.Event == audit.StaffDisabled {
				delete(applied, p.key())
			} else {
				applied[p.key()] = p
			}
		}
		if p.Next == 0 {
			return applied, nil
		}
		f.Cursor = p.Next
	}
}

// recordAccess appends a record for each difference between want and what
// the log says was applied, and returns how many it wrote.
func recordAccess(ctx context.Context, l *audit.Log, want []access, actor audit.Actor) (int, error) {
	applied, err := appliedAccess(ctx, l)
	if err != nil {
		return 0, err
	}
	var recs []*audit.Record
	rec := func(e audit.Event, p access) {
		recs = append(recs, &audit.Record{Event: e, Outcome: audit.Success, Actor: actor, Details: map[string]string{
			detailSource: accessSource, detailKind: p.kind, detailName: p.name, detailRole: p.role, detailCred: p.cred}})
	}
	seen := map[string]bool{}
	for _, p := range want {
		seen[p.key()] = true
		old, ok := applied[p.key()]
		switch {
		case !ok:
			rec(audit.StaffCreated, p)
		case old != p:
			rec(audit.StaffChanged, p)
		}
	}
	gone := make([]string, 0, len(applied))
	for k := range applied {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	for _, k := range gone {
		rec(audit.StaffDisabled, applied[k])
	}
	for _, r := range recs {
		if err := l.Append(ctx, r); err != nil {
			return 0, fmt.Errorf("record auditor and staff change: %w", err)
		}
	}
	return len(recs), nil
}

// configActor is who made a change read from the config file: the file
// names no person (firmactl edits it as whoever runs it).
var configActor = audit.Actor{Role: audit.RoleSystem, ID: "config"}

// setupAccess records what the config's auditors and staff changed since
// firmad last applied them (at its last start or reload).
func (a *app) setupAccess(ctx context.Context) error {
	n, err := recordAccess(ctx, a.audit, configuredAccess(a.cfg, a.cfg), configActor)
	if err != nil {
		return err
	}
	a.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_config_reloads_total",
		Help: "SIGHUP reloads of the auditors and staff, by result (ok, failed)."}, []string{"result"})
	a.reg.MustRegister(a.reloads)
	// Both series exist from the start, so that an alert on an increase
	// of "failed" sees its first failure.
	a.reloads.WithLabelValues("ok")
	a.reloads.WithLabelValues("failed")
	a.log.Info("operators, auditors and staff applied", "operators", len(a.cfg.Auth.Operators), "auditors", len(auditSection(a.cfg).Auditors),
		"staff", len(registrySection(a.cfg).Staff), "changes_recorded", n)
	return nil
}

// reloadAccess applies the auditors and staff of a freshly loaded config
// (SIGHUP). A config that does not load, or whose change cannot be
// recorded, changes nothing. Other settings need a restart.
func (a *app) reloadAccess(ctx context.Context, load func() (*config.Config, error)) error {
	err := a.applyAccess(ctx, load)
	result := "ok"
	if err != nil {
		result = "failed"
		a.log.Error("reload of auditors and staff failed; the previous ones stay", "err", err)
	}
	if a.reloads != nil {
		a.reloads.WithLabelValues(result).Inc()
	}
	return err
}

func (a *app) applyAccess(ctx context.Context, load func() (*config.Config, error)) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	auditors, err := api.NewAuditors(auditSection(cfg).Auditors)
	if err != nil {
		return err
	}
	staff, err := api.NewStaffAuth(nil, registrySection(cfg).Staff)
	if err != nil {
		return err
	}
	// Recorded before they take effect, as every other change is.
	n, err := recordAccess(ctx, a.audit, configuredAccess(cfg, a.cfg), configActor)
	if err != nil {
		return err
	}
	if a.auditors != nil {
		a.auditors.Replace(auditors)
	}
	if a.staff != nil {
		a.staff.Replace(staff)
	}
	a.log.Info("auditors and staff reloaded", "auditors", len(auditSection(cfg).Auditors),
		"staff", len(registrySection(cfg).Staff), "changes_recorded", n)
	return nil
}
