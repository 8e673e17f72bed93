package ca

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
)

// ErrAuditUnavailable means an event could not be recorded in the audit
// log, so the operation was refused: nothing unaudited leaves the CA.
var ErrAuditUnavailable = errs.Sentinel(errs.Unavailable, "ca_audit_unavailable", "audit log unavailable, operation refused")

// Auditor records the CA's events; *audit.Log is one. Append returns only
// once the record is durable; an error makes the CA refuse the operation.
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

var _ Auditor = (*audit.Log)(nil)

type actorKey struct{}

// WithActor tells the CA who asked for the operations made with ctx, for
// the audit log; without it the CA itself (system "ca") is the actor.
func WithActor(ctx context.Context, a audit.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func actorOf(ctx context.Context) audit.Actor {
	if a, ok := ctx.Value(actorKey{}).(audit.Actor); ok && a.Role != "" {
		return a
	}
	return audit.Actor{Role: audit.RoleSystem, ID: "ca"}
}

// record appends rec, refusing (ErrAuditUnavailable) if it cannot.
func (a *Authority) record(ctx context.Context, rec *audit.Record) error {
	if a.cfg.Audit == nil {
		return nil
	}
	if rec.Actor.Role == "" {
		rec.Actor = actorOf(ctx)
	}
	if rec.Outcome == "" {
		rec.Outcome = audit.Success
	}
	if err := a.cfg.Audit.Append(ctx, rec); err != nil {
		a.m.errors.WithLabelValues("audit").Inc()
		a.log.Error("audit append failed, refusing", "event", rec.Event, "key", rec.KeyID, "err", err)
		return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	return nil
}

// recordFailure appends the record of a failed operation, best effort:
// the operation already failed and keeps its own error.
func (a *Authority) recordFailure(ctx context.Context, rec *audit.Record, cause error) {
	rec.Outcome, rec.Reason = audit.Failure, truncate(cause.Error(), 250)
	if rec.KeyID == "" {
		rec.KeyID = "-"
	}
	a.record(context.WithoutCancel(ctx), rec)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// keyUsed is the record of one signature by a CA key over der (a
// certificate, CRL, OCSP response or CSR), described by its SHA-256.
func keyUsed(keyID, purpose string, der []byte, details map[string]string) *audit.Record {
	sum := sha256.Sum256(der)
	if details == nil {
		details = map[string]string{}
	}
	details["purpose"] = purpose
	return &audit.Record{Event: audit.KeyUsed, KeyID: keyID, Documents: []audit.Document{audit.Digest(crypto.SHA256, sum[:])},
		Details: details}
}

// hexSerial spells a serial for audit details with a 0x prefix, which
// keeps long digit runs from looking like phone numbers to the log.
func hexSerial(s string) string { return "0x" + s }

// generate makes a key for owner (a citizen's ID or a system owner) under
// audit.ChangeKey: recorded before the HSM is asked, refused when it
// cannot be; mode "" is the keystore's configured mode.
func (a *Authority) generate(ctx context.Context, owner string, t keystore.Type, m keystore.Mode, purpose string) (*keystore.Key, error) {
	c := audit.KeyChange{Details: map[string]string{"purpose": purpose, "type": string(t)}}
	if !strings.HasPrefix(owner, "system:") {
		c.Citizen = owner
	} else {
		c.Details["owner"] = owner
	}
	if m != "" {
		c.Details["mode"] = string(m)
	}
	var key *keystore.Key
	_, err := a.changeKey(ctx, c, func(ctx context.Context) (string, error) {
		var err error
		if m == "" {
			key, err = a.keys.Generate(ctx, owner, t)
		} else {
			key, err = a.keys.GenerateMode(ctx, owner, t, m)
		}
		if err != nil {
			return "", err
		}
		return key.ID, nil
	})
	if err != nil {
		if key != nil {
			// Made, its result not recorded: not handed out.
			return nil, a.dropKey(ctx, key.ID, err)
		}
		return nil, err
	}
	return key, nil
}

// changeKey is audit.ChangeKey on the CA's audit log, the actor the one
// ctx names; a CA without one (tests) changes keys unrecorded, as it
// records nothing else.
func (a *Authority) changeKey(ctx context.Context, c audit.KeyChange, do func(context.Context) (string, error)) (string, error) {
	if a.cfg.Audit == nil {
		return do(ctx)
	}
	c.Actor = actorOf(ctx)
	id, err := audit.ChangeKey(ctx, a.cfg.Audit, c, do)
	if errors.Is(err, audit.ErrUnavailable) {
		a.m.errors.WithLabelValues("audit").Inc()
		a.log.Error("audit append failed, refusing a key change", "key", c.KeyID, "err", err)
		err = fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	return id, err
}

// signFailed records a signature a CA key could not make.
func (a *Authority) signFailed(ctx context.Context, keyID, purpose string, err error) {
	a.recordFailure(ctx, &audit.Record{Event: audit.KeyUsed, KeyID: keyID, Details: map[string]string{"purpose": purpose}}, err)
}

// certificateEvent records a certificate issued (or renewed, when it
// replaces another) for keyID.
func (a *Authority) certificateEvent(ctx context.Context, ev audit.Event, citizen, keyID, id string, der []byte, serial, issuer string, extra map[string]string) error {
	sum := sha256.Sum256(der)
	d := map[string]string{"issuer": issuer}
	if serial != "" {
		d["serial"] = hexSerial(serial)
	}
	if id != "" {
		d["certificate_id"] = id
	}
	for k, v := range extra {
		d[k] = v
	}
	return a.record(ctx, &audit.Record{Event: ev, Citizen: citizen, KeyID: keyID,
		Documents: []audit.Document{audit.Digest(crypto.SHA256, sum[:])}, Details: d})
}

// revocationEvent records a revocation before it is stored.
func (a *Authority) revocationEvent(ctx context.Context, c *Certificate, reason Reason) error {
	d := map[string]string{"certificate_id": c.ID, "reason": reason.String()}
	if c.Serial != "" { // empty for a pending external request
		d["serial"] = hexSerial(c.Serial)
	}
	return a.record(ctx, &audit.Record{Event: audit.CertificateRevoked, Citizen: c.Owner, KeyID: c.KeyID, Details: d})
}
