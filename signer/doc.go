// Package signer is the signing core and the signature formats built on it.
//
// Core signs batches of digests with keys held by a keystore.HSM,
// spreading each batch over the keystore's sessions and checking every RSA
// signature (and, if configured, every ECDSA one) against the public key
// before it leaves, since a faulty RSA-CRT signature leaks the private key.
// The document formats (raw, CAdES, PAdES) turn documents into signed
// objects using any crypto.Signer, the keystore's included.
package signer
