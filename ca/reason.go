package ca

import (
	"fmt"
	"strings"
)

// Reason is an RFC 5280 CRLReason code.
type Reason int

// Revocation reasons. certificateHold (6) and removeFromCRL (8) are
// absent on purpose: revocation destroys the key, so it cannot be undone.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonCACompromise         Reason = 2
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonPrivilegeWithdrawn   Reason = 9
)

var reasonNames = map[Reason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
}

// String returns the RFC 5280 name of the reason.
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

func (r Reason) check() error {
	if _, ok := reasonNames[r]; !ok {
		return fmt.Errorf("%w: code %d is not one of %s", ErrBadReason, int(r), reasonList())
	}
	return nil
}

func reasonList() string {
	var names []string
	for _, r := range []Reason{0, 1, 2, 3, 4, 5, 9} {
		names = append(names, reasonNames[r])
	}
	return strings.Join(names, ", ")
}

// ParseReason parses an RFC 5280 reason name (case and dashes ignored, so
// "key-compromise" works) or its number.
func ParseReason(s string) (Reason, error) {
	key := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(s))
	if key == "" {
		return ReasonUnspecified, nil
	}
	for r, n := range reasonNames {
		if strings.ToLower(n) == key || fmt.Sprint(int(r)) == key {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not one of %s", ErrBadReason, s, reasonList())
}
