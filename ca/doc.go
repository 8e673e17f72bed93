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
//
// # Set-up
//
// Authority.Init (firmactl init, firmactl ca init) makes, once, a root CA
// and an issuing CA with token keys owned by OwnerRoot and OwnerIssuing,
// and a delegated OCSP responder certificate (id-kp-OCSPSigning,
// ocsp-nocheck) that Load renews when a third of its life is left. For an
// issuing CA certified elsewhere: IssuingCSR (firmactl ca issuing-csr)
// makes the key and CSR, the outside root signs it as a CA, and
// ImportIssuing (firmactl ca import-issuing) adopts the certificate after
// checking it is a CA certificate for that very key.
//
// # Certificates
//
// EnsureCertificate is what signing flows call: it returns the citizen's
// valid certificate or issues one (new key in the configured keystore
// mode, default EC P-256) on first use. Citizens the registry does not
// report as active and advanced are refused with ErrNotAdvanced or
// ErrInactive wrapped around the *policy.Refusal that says what to do.
// Renew supersedes, Revoke and RevokeCitizen revoke with an RFC 5280
// reason; each destroys the old private key in the HSM and republishes the
// CRL at once. The store allows one valid certificate per citizen, so
// replicas racing on first use cannot both issue.
//
// # Publication
//
// api/rest/pkihttp serves, without authentication as relying parties need:
//
//	GET  /crl/issuing.crl, /crl/root.crl   DER CRLs, re-signed every CRLInterval
//	POST /ocsp, GET /ocsp/{base64}         RFC 6960 responder
//	GET  /ca/root.crt, /ca/issuing.crt     the certificates AIA points to
//
// # Audit
//
// With Config.Audit set, every key the CA generates, uses (certificates,
// CRLs, OCSP responses, CSRs) or destroys and every certificate issued,
// renewed or revoked is recorded before the result is kept or sent; if the
// record cannot be written the operation fails with ErrAuditUnavailable.
package ca
