package transaction

import (
	"context"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
)

// Auditor records key use, OTP and transaction events; *audit.Log is one.
// A signature is not released when its key.used record cannot be written.
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
	if s.opt.Auditor == nil {
		return
	}
	if err := s.opt.Auditor.Append(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "audit record lost", "event", rec.Event, "err", err)
	}
}

// algorithmName is the key.used algorithm detail for a key type.
func algorithmName(t keystore.Type) string {
	switch t {
	case keystore.ECP256:
		return "ecdsa-p256"
	case keystore.ECP384:
		return "ecdsa-p384"
	case keystore.RSA2048:
		return "rsa-pkcs1-2048"
	case keystore.RSA3072:
		return "rsa-pkcs1-3072"
	}
	return string(t)
}

// auditSigned writes one key.used record per format for the signed
// documents among outcomes, before their signatures are stored. If a
// record cannot be written those documents fail instead: no signature
// leaves without its audit record.
func (s *Service) auditSigned(ctx context.Context, t *store.Transaction, key *keystore.Signer, outcomes []*store.Document) {
	if s.opt.Auditor == nil {
		return
	}
	byFormat := map[string][]*store.Document{}
	var order []string
	for _, d := range outcomes {
		if d.Status != string(DocSigned) {
			continue
		}
		if _, ok := byFormat[d.Format]; !ok {
			order = append(order, d.Format)
		}
		byFormat[d.Format] = append(byFormat[d.Format], d)
	}
	for _, f := range order {
		ds := byFormat[f]
		rec := &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success, Actor: citizenActor(t.CitizenID), Citizen: t.CitizenID,
			Portal: t.PortalID, KeyID: key.Key().ID, RequestID: t.ID,
			Details: map[string]string{audit.DetailAlgorithm: algorithmName(key.Key().Type), audit.DetailFormat: f, "transaction": t.ID}}
		for _, d := range ds {
			_, h, _ := ParseHash(d.Hash)
			doc := audit.Digest(h, d.Digest)
			doc.Name = d.Name
			rec.Documents = append(rec.Documents, doc)
		}
		if err := s.opt.Auditor.Append(ctx, rec); err != nil {
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
			_, h, _ := ParseHash(d.Hash)
			doc := audit.Digest(h, d.Digest)
			doc.Name = d.Name
			failed = append(failed, doc)
		}
	}
	if len(failed) > 0 {
		s.record(ctx, &audit.Record{Event: audit.KeyUsed, Outcome: audit.Failure, Actor: citizenActor(t.CitizenID), Citizen: t.CitizenID,
			Portal: t.PortalID, KeyID: key.Key().ID, RequestID: t.ID, Documents: failed, Reason: "documents not signed",
			Details: map[string]string{audit.DetailAlgorithm: algorithmName(key.Key().Type), "transaction": t.ID}})
	}
}
