// Package portal is the registry of portals: the relying parties (a tax
// office's web site, a city hall's e-office) that ask citizens for
// signatures. An administrator registers each with its name, the exact
// URLs it may send citizens back to, its credentials (an API key shown
// once and kept as a SHA-256, and/or an mTLS client certificate
// fingerprint), its limits, and an optional callback URL with an HMAC key.
//
// Package transaction asks it who a caller is and what the caller may do;
// transports only translate.
package portal
