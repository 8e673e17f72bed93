// Package testpki builds, for tests, a small real PKI whose keys live on a
// fresh SoftHSM2 token: a root and an issuing CA for signers, a separate
// root for the built-in time-stamping authority (tsa.Server, reached
// through tsa.Client), and an OCSP responder and CRL server over HTTP on
// loopback.
//
// It exists so the signer and verify tests use HSM keys, real HTTP and
// certificates that openssl and poppler accept, instead of mocks.
package testpki
