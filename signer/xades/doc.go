// Package xades makes and checks XAdES signatures (ETSI EN 319 132-1)
// at the baseline levels B-B, B-T, B-LT and B-LTA: enveloped, enveloping (an XML
// element or base64 bytes in a ds:Object) and detached (a document named
// by a relative URI, or known only by its digest).
//
// The signed properties carry SigningTime, SigningCertificateV2 (digest
// of the signer's certificate and its IssuerSerialV2), a DataObjectFormat
// per signed object and, for XAdES-EPES, a SignaturePolicyIdentifier.
// B-T adds a SignatureTimeStamp over the canonicalised ds:SignatureValue
// from any Timestamper (firma's built-in TSA through the tsa client).
// Extend raises a signature, made here or elsewhere, to B-T, B-LT
// (xades:CertificateValues and xades:RevocationValues of the signer's
// chain, xadesv141:TimeStampValidationData of the TSA's, gathered by
// signer/ltv) and B-LTA (xadesv141:ArchiveTimeStamp), writing the new
// unsigned properties into the signature's bytes without re-serialising
// anything signed; Sign makes B-LT and B-LTA that way.
//
// What comes from libraries: XML parsing into a tree is
// github.com/beevik/etree, and the canonicalisation algorithms (C14N 1.0,
// 1.1, exclusive C14N, with or without comments) are
// github.com/russellhaering/goxmldsig's. Our own: the XAdES structure,
// giving a subtree its in-scope namespaces (and inherited xml:lang and
// xml:space) before canonicalising it, the document-level C14N of a
// same-document reference (processing instructions around the root),
// and the verifier's reference handling, which accepts only the
// enveloped-signature, C14N and base64 transforms, never XPath or XSLT,
// and never fetches a URI.
//
// Untrusted XML goes through Parse: a DOCTYPE is refused outright (so no
// external entities and no entity-expansion bombs), as are duplicate
// attributes, encodings other than UTF-8 and input over Limits (bytes,
// nesting, elements, attributes), all checked by a token walk with
// encoding/xml before any tree is built.
//
// Verify checks integrity (every reference, the signed properties, the
// certificate binding, the signature value); trust (chain, revocation)
// and the timestamp token's own signature are the verify package's.
package xades
