// Package rest is the root of firmad's HTTP layer: every HTTP route that is
// not the citizen's web page (package web) is served by one package under
// api/rest, named for its surface, and the domain packages (transaction,
// csc, ca, tsa, registry, ...) serve no HTTP at all:
//
//	api/rest/portalhttp   /api/v1/...     portal REST API (transaction.Service)
//	api/rest/v1http       /v1/...         REST face of the gRPC services (package api)
//	api/rest/cschttp      /csc/v2/...     CSC API v2 (csc.Service), CSC error form
//	api/rest/pkihttp      /crl, /ocsp, /ca  CA publication (ca.Authority), OCSP binary protocol
//	api/rest/tsahttp      /tsa, /tsa/certs  RFC 3161 TSA (tsa.Server), binary protocol
//	api/rest/openapi      /openapi.json, /docs/api  the OpenAPI 3.1 description of all of them
//
// cmd/firmad mounts them on its HTTP mux. This package holds what those
// surfaces share.
package rest
