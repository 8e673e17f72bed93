package ca

import "context"

// CitizenRevoker is the Authority as the registry's revocation hook
// (registry.Options.Revoker), which names reasons as RFC 5280 strings such
// as "privilegeWithdrawn" or "cessationOfOperation".
type CitizenRevoker struct {
	CA *Authority
}

// RevokeCitizen revokes every live certificate of the citizen and destroys
// their keys.
func (r CitizenRevoker) RevokeCitizen(ctx context.Context, citizenID, reason string) error {
	rr, err := ParseReason(reason)
	if err != nil {
		return err
	}
	_, err = r.CA.RevokeCitizen(ctx, citizenID, rr)
	return err
}
