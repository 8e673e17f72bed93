// Package ca is the service's certificate authority: it sets up a root and
// an issuing CA whose keys live in the HSM (or adopts an issuing CA
// certified by an outside root), issues natural-person signing certificates
// (ETSI EN 319 412-2) to citizens of the advanced registration level for
// keys generated in the HSM, renews and revokes them (revocation destroys
// the private key), and publishes their status as a CRL and through an
// RFC 6960 OCSP responder over HTTP.
//
// In external mode citizen certificates come from an outside CA instead:
// the package exports a CSR signed by the citizen's HSM key and imports the
// certificate the outside CA returns, checking it certifies that key.
package ca
