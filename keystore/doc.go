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
//
// A token that goes away for a while (its storage moved, a device removed
// or failing over) is an outage, not a loss: the Pool drops its sessions
// and cached handles, re-initialises the PKCS#11 module with a bounded
// backoff, finds the token again by label and logs in again, and callers
// get ErrTokenUnavailable until it is back. A key is ErrKeyDestroyed only
// when the store says it was destroyed; its object missing from the token
// otherwise is such an outage. Ping finds a health data object Open made,
// so readiness fails while the token's objects are gone.
package keystore
