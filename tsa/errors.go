package tsa

import (
	"errors"
	"fmt"
)

// Sentinel errors callers tell apart with errors.Is. Every reason a token
// is refused wraps ErrBadToken; the client wraps those in ErrBadReply, so
// errors.Is finds the kind and the reason alike.
var (
	// ErrUnavailable means no configured TSA could be reached, or every one
	// failed on its side (connection refused, timeout, HTTP 5xx).
	ErrUnavailable = errors.New("no time-stamping authority available")
	// ErrBadReply means a TSA answered, but with a reply that fails a check.
	ErrBadReply = errors.New("bad time-stamp reply")
	// ErrRejected means a TSA refused the request (PKIStatus rejection);
	// the *RejectionError says why.
	ErrRejected = errors.New("time-stamp request rejected")
	// ErrUnsupportedHash is a message-imprint hash the client will not use.
	ErrUnsupportedHash = errors.New("unsupported hash algorithm")

	// ErrBadToken means a time-stamp token fails verification.
	ErrBadToken = errors.New("invalid time-stamp token")
	// ErrMalformed is a token or reply that does not parse, or lacks a part.
	ErrMalformed = fmt.Errorf("%w: malformed", ErrBadToken)
	// ErrSignature is a token whose CMS signature does not verify.
	ErrSignature = fmt.Errorf("%w: signature does not verify", ErrBadToken)
	// ErrImprintMismatch is a token over another hash or digest.
	ErrImprintMismatch = fmt.Errorf("%w: message imprint differs from the one asked for", ErrBadToken)
	// ErrNonceMismatch is a token without the nonce the request carried.
	ErrNonceMismatch = fmt.Errorf("%w: nonce differs from the one sent", ErrBadToken)
	// ErrPolicyMismatch is a token under a policy not accepted.
	ErrPolicyMismatch = fmt.Errorf("%w: policy not accepted", ErrBadToken)
	// ErrUntrusted is a TSA certificate that does not chain to the roots.
	ErrUntrusted = fmt.Errorf("%w: TSA certificate does not chain to a trusted root", ErrBadToken)
	// ErrCertificateUsage is a TSA certificate whose extended key usage is
	// missing, not critical, or not id-kp-timeStamping alone.
	ErrCertificateUsage = fmt.Errorf("%w: TSA certificate not restricted to time stamping", ErrBadToken)
	// ErrTSANameMismatch is a TSTInfo tsa field that names another
	// authority than the certificate that signed the token.
	ErrTSANameMismatch = fmt.Errorf("%w: tsa name is not the TSA certificate's", ErrBadToken)
	// ErrSigningCertMismatch is an ESS signing-certificate attribute that
	// is missing or names another certificate than the signer's.
	ErrSigningCertMismatch = fmt.Errorf("%w: ESS signing-certificate attribute does not match the TSA certificate", ErrBadToken)
)

// ErrCircuitOpen is a TSA skipped without asking because it timed out or
// could not be reached within its breaker's cool-down; the attempt also
// wraps ErrUnavailable.
var ErrCircuitOpen = errors.New("skipped: timed out or unreachable recently (circuit breaker open)")
