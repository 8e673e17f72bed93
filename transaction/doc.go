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
// REST JSON in http.go), the citizen approval page (package web) and the
// CSC API. Every refusal is an *Error with a stable Code a portal can
// branch on and a message for people. The rules (OTP limits, SMS text,
// approval digest) live in package policy.
//
// # Portal REST API
//
// A portal authenticates with its API key (header X-API-Key, or
// Authorization: Bearer) or with the mTLS client certificate registered
// for it (firmactl portals create). The operations carry the names of the
// government's FIRe component:
//
//	POST /api/v1/sign                               sign: one document ("document")
//	POST /api/v1/transactions                       createBatch + addDocumentToBatch + signBatch in one call ("documents")
//	POST /api/v1/batches                            createBatch: an empty batch (state draft)
//	POST /api/v1/batches/{id}/documents             addDocumentToBatch
//	POST /api/v1/batches/{id}/sign                  signBatch: returns redirect_url
//	GET  /api/v1/transactions/{id}                  recoverBatchState
//	GET  /api/v1/transactions/{id}/result           recoverBatchResult: signatures, certificate chain, timestamps
//	GET  /api/v1/transactions/{id}/documents/{n}    recoverBatchSign (Accept: application/octet-stream for the bare file)
//	POST /api/v1/transactions/{id}/cancel           cancel before the citizen approves
//	GET  /api/v1/transactions?state=&after=&limit=  the portal's transactions
//
// Transactions are addressed by application id (the authenticated portal;
// app_id, if sent, must match), subject id (the citizen's DNI/NIE; query
// parameter subject_id, checked if given) and transaction id. Another
// portal's transaction answers 404 exactly like a missing one. A document
// is {name, media_type, content | digest + hash, format}: raw, cades or
// pades (default by media type: PDF -> pades, else cades; pades needs the
// content). Creation answers redirect_url, /sign/{id} on the public URL:
// send the citizen there; they come back to ok_url or error_url (exact
// entries of the portal's allow-list) with ?transaction_id=.
//
// Errors are application/problem+json with "code" (e.g.
// weak_registration, bad_redirect_url, duplicate_document, otp_locked),
// "detail" for people and, for a bad field, "field".
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
