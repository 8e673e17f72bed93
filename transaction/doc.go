// Package transaction is the signing transaction core: a portal asks for
// signatures over 1..N documents, the citizen signs in with the Cl@ve
// Permanente password, receives a one-time password by SMS bound to the
// exact documents, approves (or rejects), and the service signs with the
// citizen's HSM key, issuing their certificate on first use.
//
// Every step is a state transition persisted with a conditional update
// against the version read, so a restart or a second node loses nothing
// and never runs a step twice:
//
//	created -> authenticated -> otp_sent -> approved -> signing -> done
//	                                  \-> rejected | failed | expired | cancelled
//
// Service is what transports call: the portal API (gRPC in package api,
// REST JSON in http.go), the citizen approval page and the CSC API. Every
// refusal is an *Error with a stable Code a portal can branch on and a
// message for people. When a transaction ends, the portal's callback URL
// (if any) receives its id and state, signed with HMAC-SHA256 (callback.go).
// The rules (OTP limits, SMS text, approval digest) live in package policy.
package transaction
