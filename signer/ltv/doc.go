// Package ltv gathers validation material for long-term signatures
// (ETSI EN 319 122-1, 319 132-1 and 319 142-1, level B-LT): every
// certificate of a chain and, for each certificate that is not a trust
// anchor, an OCSP response or a CRL that says it was not revoked.
//
// A Gatherer asks an in-process OCSP responder first (firmad's built-in
// CA), then the certificate's OCSP URLs, then its CRL distribution
// points, over HTTP with timeouts, and checks every answer against the
// issuer before it is kept. A Batch is a Gatherer with a cache for the
// life of one batch of signatures, so a batch of documents signed with
// one certificate costs one OCSP exchange per certificate, not one per
// document. The signer package's CAdES and PAdES use it; XAdES can too.
package ltv
