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
//	[draft ->] created -> authenticated -> otp_sent -> approved -> signing -> done
//	                  \-> rejected | failed | expired | cancelled
//
// Service is what transports call: the portal API (gRPC in package api,
// REST JSON in api/rest/portalhttp), the citizen approval page (package
// web) and the CSC API. This package serves no HTTP itself. Every refusal is an *Error with a stable Code a portal can
// branch on and a message for people. The rules (OTP limits, SMS text,
// approval digest) live in package policy.
//
// # Signing workers
//
// Approve records the citizen's decision and returns; signing happens on
// a bounded pool of workers the Service owns (Start, Stop), never on the
// approving request's context, so a closed tab or a proxy timeout stops
// nothing. Approve queues the transaction here; Run's resume scan offers
// the workers every approved transaction that is due, from any node or
// from before a restart. A worker takes the signing lease (approved ->
// signing, a conditional update: the guard between workers and nodes),
// signs document by document, and renews the lease as it stores each
// outcome, before that outcome's key.used: a worker that stalls past
// Options.SignLease finds the lease taken over and withholds what it
// signed, so each document has one key.used. Signatures are stored
// hidden (DocRecording, never handed out) before their key.used and
// marked signed after it; a resume confirms their record in the audit
// log, or writes it, and never signs them again. A transient HSM or audit
// fault hands the transaction back with a growing, jittered backoff; Stop
// hands back at the next document. Get and View report the progress.
//
// # Callbacks
//
// A portal with a callback URL receives, when a transaction ends, a POST
// of {"id", "app_id", "state", "summary", "error_code"} with headers
// Firma-Timestamp (Unix seconds) and Firma-Signature: "v1=" + hex
// HMAC-SHA256(callback key, timestamp + "." + body). VerifyCallback
// checks one. Failed deliveries are retried with exponential backoff;
// polling recoverBatchState works whether or not callbacks arrive.
package transaction
