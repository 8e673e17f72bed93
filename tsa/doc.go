// Package tsa is the RFC 3161 time-stamping side of the service.
//
//   - Client asks one or more TSAs, in order with failover, retries and
//     timeouts, and checks every reply before it is used: PKIStatus, nonce,
//     message imprint, CMS signature, the TSA certificate's chain to the
//     configured roots, its critical id-kp-timeStamping-only EKU, and the
//     ESS signing-certificate attribute.
//   - Server is the built-in TSA, answering DER TimeStampReqs (its HTTP
//     binding, application/timestamp-query, is api/rest/tsahttp), its key in the HSM (LoadUnit makes it and
//     has the built-in CA certify it), serial numbers from a store sequence,
//     and no token while its time source is untrusted. Its key use is
//     audited per interval (audit.go): a key.activated record opens the
//     interval before its first token, every token leaves only once its
//     row is in the issuance log (store.TSAIssuance), and one key.used
//     summary over those rows closes it, so that anonymous requests do not
//     grow the audit log one record per token.
//   - VerifyToken checks a token on its own, for example one embedded in a
//     CAdES signature; Stamper and TokenDER let signers use either side.
//
// github.com/digitorus/timestamp builds requests and parses and
// signature-checks tokens; github.com/digitorus/pkcs7 builds the SignedData
// of issued tokens. Its TSTInfo and reply encoding are ours: the library's
// response builder draws random serial numbers and writes whole seconds.
package tsa
