// Package problem writes RFC 9457 problem documents
// (application/problem+json), the error form of every REST and HTTP
// endpoint firmad serves: the portal API, the registry and certificate
// REST APIs, the CA's publication endpoints and the TSA. Each caller keeps
// its own extension members (code, reason, field, ...) in a struct of its
// own; this package only fixes how the document goes on the wire.
package problem
