package transaction

import (
	"context"
	"maps"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
)

// Auditor records OTP and transaction events; *audit.Log is one. Key use
// is recorded by the signing service, never here.
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

var _ Auditor = (*audit.Log)(nil)

func portalActor(id string) audit.Actor  { return audit.Actor{Role: audit.RolePortal, ID: id} }
func citizenActor(id string) audit.Actor { return audit.Actor{Role: audit.RoleCitizen, ID: id} }
func systemActor() audit.Actor           { return audit.Actor{Role: audit.RoleSystem, ID: "firmad"} }

// record appends an event whose loss does not stop the operation (the
// operation's own state is the record of truth); failures are logged.
func (s *Service) record(ctx context.Context, rec *audit.Record) {
	if err := s.audit.Append(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "audit record lost", "event", rec.Event, "err", err)
	}
}

// DetailOperation on a key.used record says its documents were co-signed
// ("cosign") or counter-signed ("countersign"); absent for new signatures.
const DetailOperation = "operation"

// auditDocument names a document in key records by its digest and name.
func auditDocument(d *store.Document) audit.Document {
	_, h, _ := ParseHash(d.Hash)
	doc := audit.Digest(h, d.Digest)
	doc.Name = d.Name
	return doc
}

// release writes, through the grant, one key.used record per format for
// the signed documents among outcomes (stored hidden, DocRecording, and
// not handed out until their record is written), and one for the failed
// ones.
//
// If a record cannot be written those documents fail instead, with the
// audit message: no signature leaves without its record. They are not
// put back to pending for a later retry: other documents of the batch may
// already be stored as signed, the portal and the citizen get a definite
// answer now rather than a transaction that waits on the audit log, and
// the consent (the OTP) was given for this signing, not for one at an
// unknown later time. The audit log refusing the key.activated record
// before anything is signed is different: then the lease is given back
// and the transaction signs later (see Service.authorise).
//
// extra goes on the signed documents' records (a resume names there the
// signatures made before the interruption).
func (s *Service) release(ctx context.Context, t *store.Transaction, g *signing.Grant, outcomes []*store.Document, extra map[string]string) {
	type group struct{ format, op string }
	byFormat := map[group][]*store.Document{}
	var order []group
	for _, d := range outcomes {
		if d.Status != string(DocRecording) {
			continue
		}
		// A cosignature or countersignature is recorded as such.
		o, _ := readSignOptions(d.SignOptions)
		g := group{d.Format, string(o.Op)}
		if _, ok := byFormat[g]; !ok {
			order = append(order, g)
		}
		byFormat[g] = append(byFormat[g], d)
	}
	for _, gr := range order {
		ds := byFormat[gr]
		details := extra
		if gr.op != "" {
			details = maps.Clone(extra)
			if details == nil {
				details = map[string]string{}
			}
			details[DetailOperation] = gr.op
		}
		res := signing.Result{Format: gr.format, Details: details}
		for _, d := range ds {
			res.Documents = append(res.Documents, auditDocument(d))
		}
		if err := g.Release(ctx, res); err != nil {
			s.log.ErrorContext(ctx, "audit unavailable: signatures withheld", "transaction", t.ID, "documents", len(ds), "err", err)
			for _, d := range ds {
				d.Status, d.Result, d.Timestamped = string(DocFailed), nil, false
				d.ErrorCode, d.Error = string(CodeSigningFailed), "the audit log was unavailable, so the signature was not released"
			}
		}
	}
	var failed []audit.Document
	for _, d := range outcomes {
		if d.Status == string(DocFailed) {
			failed = append(failed, auditDocument(d))
		}
	}
	if len(failed) > 0 {
		if err := g.Release(ctx, signing.Result{Documents: failed, Failure: "documents not signed"}); err != nil {
			s.log.ErrorContext(ctx, "audit record lost", "event", audit.KeyUsed, "transaction", t.ID, "err", err)
		}
	}
}
