// Package pkihttp publishes the built-in CA over HTTP, one surface of the
// REST layer under api/rest: what relying parties fetch from the URLs in
// certificates' CRL distribution point and AIA extensions.
//
//	GET  /crl/issuing.crl, /crl/root.crl               DER CRL (application/pkix-crl)
//	POST /ocsp                                         RFC 6960 OCSP, request in the body
//	GET  /ocsp/{base64 request}                        RFC 6960 appendix A.1 GET form
//	GET  /ca/root.crt, /ca/issuing.crt, /ca/ocsp.crt   DER certificates
//
// OCSP answers in its own binary protocol (malformedRequest and so on);
// only the HTTP misuse of the other routes is application/problem+json.
// The CA itself (package ca) signs and keeps the CRLs and responses.
package pkihttp
