// Package tsahttp is the HTTP binding of the built-in time-stamping
// authority (RFC 3161 section 3.4), one surface of the REST layer under
// api/rest:
//
//	POST /tsa         application/timestamp-query → application/timestamp-reply
//	GET  /tsa/certs   the TSA certificate and its chain, PEM
//
// The protocol answers are tsa.Server's: a refused query is a rejection
// reply with HTTP 200, a failure on our side a systemFailure reply with 500
// (503 while the time source is untrusted). Only HTTP misuse (method,
// media type, size) is answered here, as application/problem+json.
package tsahttp
