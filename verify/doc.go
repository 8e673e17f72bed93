// Package verify checks CAdES (detached CMS, against the content or its
// digest) and PAdES signatures the way a relying party must: integrity of
// the signed attributes and of the document, the ESS signing-certificate
// binding, the signer's chain to configured roots, the revocation status
// of every certificate at the time of signing, and the signature
// timestamp (token signature, imprint over the signature value, TSA
// chain). For PDFs it also checks what /ByteRange covers, that updates
// appended after a signature left the pages as signed, and document
// timestamps (ETSI.RFC3161). Every check gets a result (passed, failed, indeterminate) with a
// reason, and each signature an overall verdict (valid, invalid,
// indeterminate), following the spirit of ETSI EN 319 102-1.
//
// A CMS with its content inside is checked against it; each parallel
// signer gets its own report, and so does each countersignature (nested
// in the signer's unsigned attributes), which names the signature it
// countersigns. A declared signature policy is reported; the AGE one's
// hash is checked against its published document's.
//
// It is a package of its own, used by the gRPC/REST VerifyService and by
// `firmactl verify`, so anybody can verify without running the service.
package verify
