// Package problem writes RFC 9457 problem documents
// (application/problem+json), the error form of every REST and HTTP
// endpoint firmad serves (api/rest/...): the portal API, the /v1 REST face
// of the gRPC services, the CA's publication endpoints and the TSA. They
// all have one shape, Details: type, title, status, detail, code and, when
// one request field is at fault, field. The CSC API answers in its own
// specification's form instead, and OCSP and RFC 3161 in their binary
// protocols.
package problem
