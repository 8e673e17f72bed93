// Package openapi describes every REST surface firmad serves as one
// OpenAPI 3.1 document, and serves it: GET /openapi.json, and GET
// /docs/api, the same document rendered by our own template into one HTML
// page with no external assets (no CDN, no script).
//
// The document is spec.yaml (hand-written: paths, the portal, CSC and FIRe
// shapes, the callback) completed at start-up from the proto descriptors:
// each /v1 operation names its gRPC method (x-grpc) and gets that method's
// request and response messages, and every firma.v1 message becomes a
// component schema, so the /v1 schemas cannot drift from the messages.
// openapi.json beside it is the built document, for readers of the
// repository; a test keeps it equal to what is served.
//
// The checks live elsewhere: cmd/firmad's route test fails on a route
// firmad registers that the document does not describe, and handler tests
// run their servers through openapitest, which validates every answer
// against the document with kin-openapi.
package openapi
