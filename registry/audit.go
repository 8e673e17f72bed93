package registry

import (
	"context"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/policy"
)

// Auditor appends records to the audit log; *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

var _ Auditor = (*audit.Log)(nil)

func staffActor(s Staff) audit.Actor {
	role := audit.RoleAdmin
	switch s.Role {
	case policy.Registrar:
		role = audit.RoleRegistrar
	case policy.VideoAgent:
		role = audit.RoleVideoAgent
	}
	return audit.Actor{Role: role, ID: s.Name}
}

func citizenActor(id string) audit.Actor { return audit.Actor{Role: audit.RoleCitizen, ID: id} }

// record appends an audit record. Registry changes are committed before
// they are audited, so a failing audit log cannot undo them: the failure
// is logged at Error for the operators, and the caller is not failed.
func (r *Service) record(ctx context.Context, rec *audit.Record) {
	if r.opt.Audit == nil {
		return
	}
	if err := r.opt.Audit.Append(ctx, rec); err != nil {
		r.log.ErrorContext(ctx, "audit record not written", "event", rec.Event, "citizen", rec.Citizen, "err", err)
	}
}
