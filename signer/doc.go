// Package signer is the signing core and the signature formats built on it.
//
// Core signs batches of digests with keys held by a keystore.HSM,
// spreading each batch over the keystore's sessions and checking every RSA
// signature (and, if configured, every ECDSA one) against the public key
// before it leaves, since a faulty RSA-CRT signature leaks the private key.
// The document formats (raw, CAdES, PAdES) turn documents into signed
// objects using any crypto.Signer, the keystore's included. CAdES and
// PAdES signatures may declare a signature policy (EPES; the AGE one is
// built in); CAdES ones may carry their content (attached), and an
// existing CAdES may be co-signed (CoSign: another SignerInfo) or
// counter-signed (CounterSign); a PDF is co-signed by PAdES again.
package signer
