// Package keystore keeps per-user key pairs in a PKCS#11 token and hands out
// crypto.Signers for them.
//
// A Pool of logged-in sessions does the PKCS#11 work; callers never see a
// session. Keys live in one of two modes: "token", where each private key is
// a token object found once and then signed with through a cached handle, and
// "wrapped", where the private key is kept in the store encrypted under a
// non-extractable AES-256 key-encryption key on the token and unwrapped into
// a session object on use (a bounded LRU keeps the live ones). Wrapped mode
// is how the service holds millions of keys that no HSM could store.
package keystore
